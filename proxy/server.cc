#include "proxy/server.h"

#include "proxy/accounting/accountant.h"
#include "proxy/net/tls_context.h"
#include "proxy/net/unix_listener.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <thread>

#include <spdlog/spdlog.h>

#include "protocol/command_table.h"
#include "config/diff.h"
#include "proxy/base/logging.h"
#include "proxy/fleet_limits.h"
#include "proxy/fleet_rate.h"
#include "proxy/worker.h"

namespace keyfence::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Server::Server(std::string config_path, config::SnapshotPtr initial)
    : config_path_(std::move(config_path)),
      snapshot_(std::move(initial)),
      file_snapshot_(snapshot_),
      signals_(control_, SIGTERM, SIGINT, SIGHUP),
      probe_timer_(control_),
      next_version_(snapshot_->version + 1) {
  std::vector<std::string> names;
  const auto& table = protocol::CommandTable::Get();
  for (size_t i = 0; i < table.size(); ++i) {
    names.emplace_back(table.ById(static_cast<uint16_t>(i)).name);
  }
  metrics_ = std::make_unique<MetricsRegistry>(std::move(names));
  metrics_->SetConfigVersion(snapshot_->version);
  metrics_->SetConfigHash(snapshot_->hash);
  max_clients_.store(snapshot_->max_clients);
}

Server::~Server() = default;

bool Server::TryAddClient() {
  int64_t n = clients_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n > max_clients_.load(std::memory_order_relaxed)) {  // workers: never snapshot_
    clients_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void Server::RemoveClient() { clients_.fetch_sub(1, std::memory_order_relaxed); }

std::vector<config::Endpoint> Server::AclNodes(const config::Snapshot& snap) const {
  std::vector<config::Endpoint> nodes = snap.backend.nodes;
  std::lock_guard<std::mutex> l(map_mu_);
  if (last_map_) {
    nodes.insert(nodes.end(), last_map_->masters.begin(), last_map_->masters.end());
    for (const auto& rs : last_map_->replicas) nodes.insert(nodes.end(), rs.begin(), rs.end());
  }
  return nodes;
}

bool Server::TryAddUnauthenticated(const std::string& addr, uint32_t per_addr,
                                   uint64_t total_cap) {
  std::lock_guard<std::mutex> l(unauth_mu_);
  uint32_t& n = unauth_by_addr_[addr];
  if ((per_addr != 0 && n >= per_addr) || unauth_total_ >= total_cap) {
    if (n == 0) unauth_by_addr_.erase(addr);
    return false;
  }
  ++n;
  ++unauth_total_;
  return true;
}

void Server::RemoveUnauthenticated(const std::string& addr) {
  std::lock_guard<std::mutex> l(unauth_mu_);
  auto it = unauth_by_addr_.find(addr);
  if (it == unauth_by_addr_.end()) return;
  if (--it->second == 0) unauth_by_addr_.erase(it);
  --unauth_total_;
}

void Server::RequestTopologyRefresh() {
  if (topology_) topology_->RequestRefresh();
}

void Server::Publish(config::SnapshotPtr snap) {
  {
    std::lock_guard<std::mutex> l(snapshot_mu_);
    snapshot_ = snap;
  }
  max_clients_.store(snap->max_clients, std::memory_order_relaxed);
  metrics_->SetConfigVersion(snap->version);
  metrics_->SetConfigHash(snap->hash);
  tenants_.Apply(*snap, Loop::NowNs());
  if (admin_) admin_->SetToken(snap->admin.token);
  for (auto& w : workers_) w->PublishSnapshot(snap);
  if (topology_) topology_->Reconfigure(snap->backend);
  if (accountant_) accountant_->Reconfigure(snap);
  if (fleet_) fleet_->Reconfigure(snap);
  if (fleet_rate_) fleet_rate_->Reconfigure(snap);
}

std::pair<bool, std::string> Server::Reload() {
  if (watcher_) watcher_->Remember();
  config::LoadResult r = config::LoadFile(config_path_, next_version_);
  if (!r.ok()) {
    metrics_->CountReload(false);
    std::string json = "{\"ok\":false,\"errors\":[";
    for (size_t i = 0; i < r.errors.size(); ++i) {
      std::string e = r.errors[i].ToString();
      spdlog::error("config reload: {}", e);
      json += i ? ",\"" : "\"";
      AppendJsonEscaped(json, e.data(), e.size());
      json += "\"";
    }
    json += "]}";
    return {false, json};
  }
  // What a reload cannot apply: the backend kind (its discovery runs from the
  // start), or TLS material OpenSSL itself refuses. The running config stays.
  std::string refused;
  if (r.snapshot->backend.mode != snapshot_->backend.mode) {
    refused = "backend.mode changes need a restart";
  } else if (r.snapshot->backend.tls) {
    std::string err;
    if (!BackendTlsContext::Shared(*r.snapshot->backend.tls, &err)) refused = "backend.tls: " + err;
  }
  if (!refused.empty()) {
    metrics_->CountReload(false);
    spdlog::error("config reload: {} (the running config stays)", refused);
    std::string json = "{\"ok\":false,\"errors\":[\"";
    AppendJsonEscaped(json, refused.data(), refused.size());
    return {false, json + "\"]}"};
  }
  ++next_version_;
  metrics_->CountReload(true);
  // The overrides of tenants the file leaves unchanged stay in force.
  KeepOverrides(*file_snapshot_, *r.snapshot);
  config::SnapshotPtr next = Effective(r.snapshot, r.snapshot->version);
  LogEvent(spdlog::level::info, "config reloaded",
           {{"version", next->version}, {"hash", next->hash}, {"file_hash", r.snapshot->hash},
            {"changes", config::Describe(*snapshot_, *next).ToString()}});
  file_snapshot_ = r.snapshot;
  // Listener, worker and admin-bind changes need a restart; say so.
  auto listeners = [](const config::Snapshot& s) {
    std::string k;
    for (const auto& l : s.listeners) {  // what a listener is; its certificates reload live
      k += l.Name() + "/" + l.tenant + "/" + (l.tls ? "tls" : "plain") + "/" +
           std::to_string(static_cast<int>(l.tenant_from)) + "/" + std::to_string(l.unix_mode) +
           ";";
    }
    return k;
  };
  if (listeners(*r.snapshot) != listeners(*snapshot_) || r.snapshot->workers != snapshot_->workers ||
      r.snapshot->admin.bind.ToString() != snapshot_->admin.bind.ToString()) {
    spdlog::warn("config reload: listener (bind, unix, tenant, tls on/off, tenant_from, mode), "
                 "worker and admin.bind changes take effect after a restart");
  }
  acl_.Apply(next, AclNodes(*next));  // before any request runs on the new rules
  Publish(next);
  if (watcher_) {
    watcher_->SetExtraFiles(TlsFiles(*r.snapshot));
    watcher_->Remember();
  }
  return {true, "{\"ok\":true,\"version\":" + std::to_string(next->version) + ",\"hash\":\"" +
                    next->hash + "\"}"};
}

std::vector<std::string> Server::TlsFiles(const config::Snapshot& snap) {
  std::vector<std::string> files;
  for (const config::Listener& l : snap.listeners) {
    if (!l.tls) continue;
    for (const std::string* f : {&l.tls->cert_path, &l.tls->key_path, &l.tls->ca_path}) {
      if (!f->empty()) files.push_back(*f);
    }
  }
  if (const auto& t = snap.backend.tls) {  // backend.tls: a rotated client certificate or CA
    for (const std::string* f : {&t->cert_path, &t->key_path, &t->ca_path}) {
      if (!f->empty()) files.push_back(*f);
    }
  }
  return files;
}

void Server::ProbeBackend() {
  auto sock = std::make_shared<tcp::socket>(control_);
  config::Endpoint ep;
  if (snapshot_->backend.mode == config::BackendMode::kSentinel) {
    std::lock_guard<std::mutex> l(map_mu_);  // the master, once the sentinels named it
    ep = last_map_ && !last_map_->masters.empty() ? last_map_->masters[0]
                                                  : snapshot_->backend.sentinel.nodes[0];
  } else {
    ep = snapshot_->backend.nodes[0];
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(ep.host, ec);
  if (ec) {
    tcp::resolver res(control_);
    auto results = res.resolve(ep.host, std::to_string(ep.port), ec);
    if (!ec && !results.empty()) addr = results.begin()->endpoint().address();
  }
  sock->async_connect(tcp::endpoint(addr, ep.port), [this, sock](const boost::system::error_code& e) {
    backend_ok_.store(!e, std::memory_order_relaxed);
    boost::system::error_code ignored;
    sock->close(ignored);
  });
  probe_timer_.expires_after(std::chrono::milliseconds(500));
  probe_timer_.async_wait([this, sock](const boost::system::error_code& e) {
    if (e) return;
    boost::system::error_code ignored;
    sock->close(ignored);
    ProbeBackend();
  });
}

namespace {
constexpr uint64_t kQuietNs = 100'000'000;  // shutdown: connections idle this long are done
}  // namespace

void Server::WaitSignal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", config_path_);
      Reload();
      return WaitSignal();
    }
    spdlog::info("signal {}: stopping (grace {} ms)", sig, snapshot_->shutdown_grace_ms);
    for (auto& w : workers_) w->StopAccepting();
    if (admin_) admin_->Stop();
    if (watcher_) watcher_->Stop();
    probe_timer_.cancel();
    // Drain: requests in flight get their replies (bounded by shutdown_grace_ms),
    // then every connection is closed and the process exits 0.
    auto deadline = Loop::NowNs() + uint64_t{snapshot_->shutdown_grace_ms} * 1000000;
    auto timer = std::make_shared<asio::steady_timer>(control_);
    auto check = std::make_shared<std::function<void()>>();
    auto quiet_since = std::make_shared<uint64_t>(0);
    *check = [this, timer, check, deadline, quiet_since]() {
      bool busy = false, clients = false;
      for (auto& w : workers_) {
        busy = busy || w->busy();
        clients = clients || w->has_clients();
      }
      // Done once no connection is open, or every one has been quiet for
      // kQuietNs (a client in the middle of sending a pipeline is not cut off
      // between two reads).
      const uint64_t now = Loop::NowNs();
      if (busy) *quiet_since = 0;
      else if (*quiet_since == 0) *quiet_since = now;
      const bool drained = !clients || (!busy && now - *quiet_since >= kQuietNs);
      if (drained || now >= deadline) {
        if (busy) spdlog::warn("shutdown grace over: closing connections with requests in flight");
        for (auto& w : workers_) w->Stop();
        control_.stop();
        *check = nullptr;
        return;
      }
      for (auto& w : workers_) w->PollBusy();
      timer->expires_after(std::chrono::milliseconds(20));
      timer->async_wait([check](const boost::system::error_code&) {
        if (*check) (*check)();
      });
    };
    for (auto& w : workers_) w->PollBusy();
    timer->expires_after(std::chrono::milliseconds(20));
    timer->async_wait([check](const boost::system::error_code&) {
      if (*check) (*check)();
    });
  });
}

int Server::Run() {
  unsigned n = snapshot_->workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  tenants_.Apply(*snapshot_, Loop::NowNs());
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(static_cast<int>(i), *this, metrics_->AddWorker()));
  }
  try {
    std::map<std::string, int> unix_fds;
    for (const auto& l : snapshot_->listeners) {
      if (!l.is_unix()) continue;
      unix_listeners_.push_back(std::make_unique<UnixListener>(l.unix_path, l.unix_mode));
      unix_fds[l.unix_path] = unix_listeners_.back()->fd();
    }
    for (auto& w : workers_) {
      w->PublishSnapshot(snapshot_);
      w->Listen(snapshot_->listeners, unix_fds);
    }
    for (auto& u : unix_listeners_) u->CloseFd();  // the workers hold theirs
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen: {}", e.what());
    return 1;
  }
  AdminHandlers h;
  h.metrics = [this] {
    std::string accounting;
    try {  // a surprise there must not hide every other metric
      if (accountant_) accounting = accountant_->MetricsText();
    } catch (const std::exception& e) {
      spdlog::error("metrics: accounting: {}", e.what());
    }
    return metrics_->SerializeText() + HotKeysMetricText() + accounting +
           (fleet_rate_ ? fleet_rate_->MetricsText() : std::string());
  };
  h.ready = [this] {
    return listening_.load() && backend_ok_.load() && (!topology_ || topology_->ready());
  };
  h.config_json = [this] { return ConfigJson(); };
  h.tenant_limits = [this](bool put, std::string_view tenant, std::string_view body,
                           std::string_view query) {
    return TenantLimits(put, tenant, body, query);
  };
  h.reload = [this] {
    auto [ok, body] = Reload();
    return std::make_pair(ok ? 200 : 400, body);
  };
  h.tenants_json = [this] { return TenantsJson(); };
  h.hotkeys_json = [this](std::string_view tenant) { return HotKeysJson(tenant); };
  h.bigkeys_json = [this](std::string_view tenant) { return BigKeysJson(tenant); };
  h.namespaces_json = [this] { return accountant_ ? accountant_->NamespacesJson() : "{}"; };
  h.analyze = [this] {
    if (accountant_ && accountant_->RequestRun()) {
      return std::make_pair(202, std::string("{\"started\":true}"));
    }
    return std::make_pair(409, std::string("{\"started\":false,\"error\":\"an analysis is running\"}"));
  };
  admin_ = std::make_unique<AdminServer>(control_, snapshot_->admin.bind.host,
                                         snapshot_->admin.bind.port, std::move(h),
                                         snapshot_->admin.token);
  if (auto ec = admin_->Start()) {
    spdlog::critical("cannot start admin server on {}: {}", snapshot_->admin.bind.ToString(),
                     ec.message());
    return 1;
  }
  acl_.Apply(snapshot_, AclNodes(*snapshot_));  // tenant users exist before the first request
  for (auto& w : workers_) w->Start();
  // Topology changes (cluster) reach the workers as immutable slot maps; the
  // tenants' ACL users are set on new nodes first.
  topology_ = MakeDiscovery(snapshot_->backend, [this](SlotMapPtr m) {
    size_t replicas = 0;
    for (const auto& rs : m->replicas) replicas += rs.size();
    spdlog::info("backend topology v{}: {} masters, {} replicas", m->version, m->masters.size(),
                 replicas);
    {
      std::lock_guard<std::mutex> l(map_mu_);
      last_map_ = m;
    }
    config::SnapshotPtr snap;
    {
      std::lock_guard<std::mutex> l(snapshot_mu_);
      snap = snapshot_;
    }
    acl_.AddNodes(AclNodes(*snap));
    for (auto& w : workers_) w->PublishSlotMap(m);
  });
  if (topology_) topology_->Start();
  accountant_ = std::make_unique<accounting::Accountant>(snapshot_, tenants_, [this] {
    std::lock_guard<std::mutex> l(map_mu_);
    return last_map_;
  });
  accountant_->Start();
  fleet_ = std::make_unique<FleetLimits>(
      snapshot_,
      [this] {
        std::lock_guard<std::mutex> l(map_mu_);
        return last_map_;
      },
      [this](config::Overrides o) {
        asio::post(control_, [this, o = std::move(o)]() mutable { OnFleetOverrides(std::move(o)); });
      });
  fleet_->Start();
  fleet_rate_ = std::make_unique<FleetRate>(snapshot_, tenants_, [this] {
    std::lock_guard<std::mutex> l(map_mu_);
    return last_map_;
  });
  fleet_rate_->Start();
  listening_ = true;
  for (const auto& l : snapshot_->listeners) {
    spdlog::info("listening on {} ({})", l.Name(),
                 l.tenant.empty() ? std::string("gateway") : "tenant " + l.tenant);
  }
  const config::Backend& be = snapshot_->backend;
  spdlog::info("admin on {}:{}; {} workers; backend {}", snapshot_->admin.bind.host,
               admin_->port(), workers_.size(),
               be.mode == config::BackendMode::kSentinel
                   ? "sentinel master '" + be.sentinel.master + "' via " +
                         be.sentinel.nodes[0].ToString()
                   : be.nodes[0].ToString());
  ProbeBackend();
  watcher_ = std::make_unique<ConfigWatcher>(control_, config_path_, [this] { Reload(); });
  watcher_->SetExtraFiles(TlsFiles(*snapshot_));  // a certificate rotation reloads too
  watcher_->Start();
  WaitSignal();
  control_.run();
  accountant_->Stop();
  fleet_->Stop();
  fleet_rate_->Stop();
  if (topology_) topology_->Stop();
  for (auto& w : workers_) w->Join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace keyfence::proxy

namespace keyfence::proxy {

void Server::PostToWorker(uint64_t index, std::function<void(Worker&)> fn) {
  if (index >= workers_.size()) return;
  Worker* w = workers_[index].get();
  boost::asio::post(w->loop().io(), [w, fn = std::move(fn)] { fn(*w); });
}

void Server::AskAllWorkers(Worker& origin, SessionHost::SessionVisit visit,
                           std::function<void(std::vector<std::string>)> done) {
  struct Gather {
    std::mutex mu;
    std::vector<std::string> answers;  // mu
    size_t left = 0;                   // mu
    SessionHost::SessionVisit visit;
    std::function<void(std::vector<std::string>)> done;
  };
  auto g = std::make_shared<Gather>();
  g->answers.resize(workers_.size());
  g->left = workers_.size();
  g->visit = std::move(visit);
  g->done = std::move(done);
  Worker* back = &origin;
  for (size_t i = 0; i < workers_.size(); ++i) {
    Worker* w = workers_[i].get();
    boost::asio::post(w->loop().io(), [w, i, g, back] {
      std::string a = w->VisitSessions(g->visit);
      bool last = false;
      {
        std::lock_guard lock(g->mu);
        g->answers[i] = std::move(a);
        last = --g->left == 0;
      }
      if (last) boost::asio::post(back->loop().io(), [g] { g->done(std::move(g->answers)); });
    });
  }
}

}  // namespace keyfence::proxy
