// The namespace rule on arbitrary keys: strip(rewrite(k)) == k, the slot
// computed without building the name equals the slot of the name, and a
// rewritten key never lands outside the prefix.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/slot.h"
#include "tenancy/namespace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string key(reinterpret_cast<const char*>(data), size);
  const std::string prefix = "shop@orders:";
  std::string backend;
  keyfence::tenancy::AppendBackendKey(backend, prefix, key);
  if (backend.size() != keyfence::tenancy::BackendKeyLength(prefix, key)) __builtin_trap();
  if (backend.compare(0, prefix.size(), prefix) != 0) __builtin_trap();
  std::string back;
  if (!keyfence::tenancy::AppendClientKey(back, prefix, backend) || back != key) __builtin_trap();
  if (keyfence::tenancy::BackendKeySlot(prefix, key) != keyfence::protocol::KeySlot(backend)) {
    __builtin_trap();
  }
  // Another tenant's prefix never strips.
  std::string other;
  if (keyfence::tenancy::AppendClientKey(other, "shop@payments:", backend)) __builtin_trap();
  return 0;
}
