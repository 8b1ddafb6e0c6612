#include "proxy/accounting/run.h"

#include <mutex>
#include <thread>
#include <vector>

#include "proxy/accounting/replica_stream.h"
#include "proxy/backend/sentinel.h"
#include "proxy/backend/topology.h"
#include "rdb/parser.h"

namespace keyfence::proxy::accounting {

namespace {

// Counts the keys of one master, passing them on to the shared analysis.
class NodeCounter final : public rdb::RdbSink {
 public:
  NodeCounter(Analysis& a, std::mutex& mu) : a_(a), mu_(mu) {}
  void OnKey(const rdb::KeyInfo& k) override {
    ++keys;
    std::lock_guard lock(mu_);
    a_.OnKey(k);
  }
  uint64_t keys = 0;

 private:
  Analysis& a_;
  std::mutex& mu_;
};

}  // namespace

void AnalyzeBackend(const config::Snapshot& snap, Analysis& a, const Progress& progress,
                    const std::atomic<bool>* cancel) {
  const config::Backend& be = snap.backend;
  std::vector<config::Endpoint> masters;
  if (be.mode == config::BackendMode::kCluster) {
    SlotMapPtr map = DiscoverSlotMap(be);
    if (!map) {
      a.AddNode({"cluster", 0, 0, "no seed node answered CLUSTER SHARDS/SLOTS"});
      return;
    }
    masters = map->masters;
    std::vector<std::string> owners(protocol::kNumSlots);
    for (size_t s = 0; s < owners.size(); ++s) {
      if (map->owner[s] >= 0) owners[s] = masters[static_cast<size_t>(map->owner[s])].ToString();
    }
    a.CountSlots(std::move(owners));
  } else if (be.mode == config::BackendMode::kSentinel) {
    SlotMapPtr map = AskSentinels(be);
    if (!map) {
      a.AddNode({"sentinel", 0, 0, "no sentinel named a live master '" + be.sentinel.master + "'"});
      return;
    }
    masters = map->masters;
  } else if (!be.nodes.empty()) {
    masters.push_back(be.nodes.front());
  }
  // The masters are read at once (each one's BGSAVE, and a diskless
  // master's repl-diskless-sync-delay, in parallel), one thread each.
  std::mutex mu;
  std::vector<NodeRun> runs(masters.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < masters.size(); ++i) {
    threads.emplace_back([&, i] {
      const std::string name = masters[i].ToString();
      NodeCounter counter(a, mu);
      rdb::RdbParser parser(counter);
      StreamResult r = StreamRdb(masters[i], be, parser, [&](uint64_t bytes) {
        std::lock_guard lock(mu);
        if (progress) progress(name, counter.keys, bytes);
      }, cancel);
      runs[i] = {name, counter.keys, r.bytes, r.ok ? "" : r.error};
    });
  }
  for (std::thread& t : threads) t.join();
  for (NodeRun& r : runs) a.AddNode(std::move(r));
}

}  // namespace keyfence::proxy::accounting
