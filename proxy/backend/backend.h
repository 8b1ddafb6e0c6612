// The backend as the request path sees it, whatever kind it is (standalone
// server, Redis Cluster, and later Sentinel-managed): the one seam between
// commands and the servers. No code outside an implementation of this
// interface asks which kind of backend it talks to.
//
//   shared path   Prepare(slot, proto, hint) gives the buffer to write one
//                 rewritten request into; Commit(sink, tag, flags) sends it.
//                 The final reply reaches sink->OnReply(tag, frame), possibly
//                 synchronously (an error while the backend is down).
//   dedicated     Dedicated(slot) gives a connection of the client's own
//                 (transactions, blocking commands, subscribers) to the node
//                 serving `slot`; ReturnDedicated() pools it when clean.
//   keyspace      Masters() and NodeConn() for emulations that walk every
//                 node (KEYS, SCAN, DBSIZE, FLUSHDB, RANDOMKEY).
// Worker-local.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/backend/backend_conn.h"
#include "proxy/backend/backend_host.h"
#include "proxy/backend/slot_map.h"
#include "tenancy/key_finder.h"

namespace keyfence::proxy {

inline constexpr int kAnySlot = -1;  // a request without keys: any node

struct SendFlags {
  bool follow_redirects = true;  // false for scripts: their errors can be forged
  bool read_only = false;        // may be served by a replica (backend.read_from)
};

class Backend {
 public:
  virtual ~Backend() = default;

  // The hash slot of a request's keys and shard channels (rewritten with the
  // tenant prefix whose CRC state is `prefix_crc`); kAnySlot if it has none
  // or the backend has no slots. *cross: they span several slots.
  virtual int SlotOf(uint16_t prefix_crc, std::span<const std::string_view> args,
                     const tenancy::NameRefs& refs, bool* cross) const = 0;

  // One Prepare()/Commit() pair at a time.
  virtual std::string& Prepare(int slot, int proto, BackendHint hint) = 0;
  virtual void Commit(ReplySink* sink, uint64_t tag, SendFlags flags) = 0;
  void Send(std::string_view bytes, int slot, int proto, BackendHint hint, ReplySink* sink,
            uint64_t tag, SendFlags flags = {}) {
    Prepare(slot, proto, hint).append(bytes);
    Commit(sink, tag, flags);
  }

  // A dedicated connection to the node serving `slot`, or null with *error
  // (an error reply without '-' and CRLF) when no node is known for it.
  virtual std::unique_ptr<BackendConn> Dedicated(int slot, int proto, std::string* error,
                                                 const BackendUser* user) = 0;
  virtual void ReturnDedicated(std::unique_ptr<BackendConn> conn) = 0;

  // Every master (standalone: the server); empty while the topology is unknown
  // (a refresh has then been asked for).
  virtual const std::vector<config::Endpoint>& Masters() = 0;
  // The shared connection to one node.
  virtual BackendConn& NodeConn(const config::Endpoint& node, int proto, BackendHint hint) = 0;

  // The node serving `slot` (kAnySlot: any); false while unknown.
  virtual bool NodeFor(int slot, config::Endpoint* ep) {
    (void)slot;
    (void)ep;
    return false;
  }
  // A dedicated connection to a node (a subscriber connection); null if none.
  virtual std::unique_ptr<BackendConn> DedicatedTo(const config::Endpoint& node, int proto,
                                                   const BackendUser* user) {
    (void)node;
    (void)proto;
    (void)user;
    return nullptr;
  }
  // A MOVED/ASK error some connection got outside the Router (a subscriber
  // connection): the slot table follows it. False if `error` is no redirect.
  virtual bool NoteRedirect(std::string_view error) {
    (void)error;
    return false;
  }

  // Drops every reply still owed to `sink` (its owner is going away).
  virtual void Forget(ReplySink* sink) = 0;
  // Fails requests older than the request timeout.
  virtual void CheckTimeouts(uint64_t now_ns) = 0;
  // A new topology (cluster); others ignore it.
  virtual void ApplySlotMap(SlotMapPtr map) { (void)map; }
  // The backend's servers or credentials changed: new requests go to the new
  // ones while requests in flight finish on the old connections.
  virtual void Reconfigure() = 0;
};

// The control-plane half of a backend kind: finds where the servers are
// (cluster topology; a Sentinel's master) off the request path, and hands
// what it finds to every worker's Backend. Thread-safe.
class Discovery {
 public:
  virtual ~Discovery() = default;
  virtual void Start() = 0;
  virtual void Stop() = 0;
  // Cheap and coalesced: look again soon (MOVED, a connection failure).
  virtual void RequestRefresh() = 0;
  // New seeds or credentials after a config reload.
  virtual void Reconfigure(const config::Backend& settings) = 0;
  // Something usable was found (readiness).
  virtual bool ready() const = 0;
};
using PublishSlotMap = std::function<void(SlotMapPtr)>;

// The implementations for settings.mode (the one place that knows the kinds).
std::unique_ptr<Backend> MakeBackend(BackendHost& host, const config::Backend& settings);
// Null when the kind has nothing to discover (standalone).
std::unique_ptr<Discovery> MakeDiscovery(const config::Backend& settings, PublishSlotMap publish);

}  // namespace keyfence::proxy
