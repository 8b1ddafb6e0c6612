// Snapshot behaviour (tenant lookup, authentication), CommandSet, and the
// JSON view of a Snapshot for GET /config.
#include "config/config.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <string>
#include <vector>

#include "protocol/command_table.h"

namespace keyfence::config {

// ---------------------------------------------------------------------------
// CommandSet

bool CommandSet::empty() const {
  for (bool b : bits_) {
    if (b) return false;
  }
  return true;
}

std::vector<uint16_t> CommandSet::ids() const {
  std::vector<uint16_t> out;
  for (size_t i = 0; i < bits_.size(); ++i) {
    if (bits_[i]) out.push_back(static_cast<uint16_t>(i));
  }
  return out;
}

void CommandSet::Merge(const CommandSet& o) {
  if (o.bits_.size() > bits_.size()) bits_.resize(o.bits_.size(), false);
  for (size_t i = 0; i < o.bits_.size(); ++i) {
    if (o.bits_[i]) bits_[i] = true;
  }
}

std::vector<std::string> DeniedNames(const CommandSet& s) {
  const protocol::CommandTable& table = protocol::CommandTable::Get();
  std::vector<std::string> out;
  for (uint16_t id : s.ids()) {
    if (id < table.size()) out.emplace_back(table.ById(id).name);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Names, digests, diagnostics

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::array<uint8_t, 32> Sha256(std::string_view data) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  // EVP_Digest fails only on allocation failure; the zero digest then matches nothing
  // real (a configured digest equal to it would need a SHA-256 preimage of zero).
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string Diagnostic::ToString() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

// ---------------------------------------------------------------------------
// Snapshot

const Tenant* Snapshot::FindTenant(std::string_view app) const {
  for (const Tenant& t : tenants) {
    if (t.app == app) return &t;
  }
  return nullptr;
}

const Tenant* Snapshot::FindTenantByCertName(std::string_view name) const {
  for (const Tenant& t : tenants) {
    for (const std::string& n : t.cert_names) {
      if (n == name) return &t;
    }
  }
  return nullptr;
}

namespace {

bool DigestEqual(const std::array<uint8_t, 32>& a, const std::array<uint8_t, 32>& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

const Tenant* Snapshot::Authenticate(std::string_view user, std::string_view pass) const {
  const std::array<uint8_t, 32> digest = Sha256(pass);
  if (users_by_name.empty()) {
    // A hand-built Snapshot (tests) without the index: scan.
    for (const Tenant& t : tenants) {
      for (const User& u : t.users) {
        if (u.name == user) return DigestEqual(digest, u.password_sha256) ? &t : nullptr;
      }
    }
    return nullptr;
  }
  const auto it = users_by_name.find(absl::string_view(user.data(), user.size()));
  if (it == users_by_name.end()) return nullptr;
  const auto [ti, ui] = it->second;
  if (ti >= tenants.size() || ui >= tenants[ti].users.size()) return nullptr;
  return DigestEqual(digest, tenants[ti].users[ui].password_sha256) ? &tenants[ti] : nullptr;
}

const Tenant* Snapshot::AuthenticatePasswordOnly(std::string_view pass) const {
  const std::array<uint8_t, 32> digest = Sha256(pass);
  const Tenant* found = nullptr;
  // Every user is compared (no early exit), so the time does not tell which matched.
  for (const Tenant& t : tenants) {
    for (const User& u : t.users) {
      const bool match = DigestEqual(digest, u.password_sha256);
      if (match && found == nullptr) found = &t;
    }
  }
  return found;
}

// ---------------------------------------------------------------------------
// JSON

}  // namespace keyfence::config
