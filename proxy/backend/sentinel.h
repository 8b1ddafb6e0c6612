// backend.mode: sentinel — discovery (control plane, off the request path).
// The master is whatever the sentinels (backend.sentinel.nodes) say
// backend.sentinel.master is: SENTINEL get-master-addr-by-name, confirmed by
// ROLE on the node itself (a sentinel may be stale), and its healthy
// replicas from SENTINEL REPLICAS. What is found is published as a one-master
// SlotMap (every slot owned by master 0, its replicas for read_from).
//
// One thread asks (on request — a connection failure, -READONLY — coalesced;
// every kPoll otherwise, every kFailoverPoll while the named master does not
// answer as a master); one thread per sentinel holds a SUBSCRIBE to
// +switch-master and asks for a refresh the moment a failover is announced.
// Sentinels that are down or answer garbage are skipped with a log line.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "proxy/backend/backend.h"
#include "proxy/backend/slot_map.h"

namespace keyfence::proxy {

// One-off (keyfence analyze): the master and replicas the sentinels name, or
// null (logged). Never a node that does not answer ROLE as a master.
SlotMapPtr AskSentinels(const config::Backend& be, const std::atomic<bool>* cancel = nullptr);

class SentinelDiscovery final : public Discovery {
 public:
  SentinelDiscovery(config::Backend backend, PublishSlotMap publish);
  ~SentinelDiscovery() override;

  void Start() override;
  void Stop() override;
  void RequestRefresh() override;
  void Reconfigure(const config::Backend& backend) override;
  bool ready() const override { return has_map_.load(std::memory_order_relaxed); }

 private:
  void Run();
  // Ask the sentinels once; publish what changed.
  void Refresh(const config::Backend& be);
  void Subscribe(config::Endpoint sentinel, config::Backend be);
  // (Re)starts one subscriber per sentinel of `be` (discovery thread).
  void RestartSubscribers(const config::Backend& be);

  std::mutex mu_;
  std::condition_variable cv_;
  config::Backend backend_;  // mu_
  uint64_t generation_ = 0;  // mu_: bumped by Reconfigure (subscribers restart)
  bool refresh_ = true;      // mu_
  bool stop_ = false;        // mu_
  std::atomic<bool> cancel_{false};       // Stop(): every blocking call returns
  std::atomic<bool> sub_cancel_{false};   // the subscribers of this generation stop
  PublishSlotMap publish_;
  std::thread thread_;
  std::vector<std::thread> subscribers_;
  std::atomic<bool> has_map_{false};
  bool healthy_ = false;  // the last ask found a live master (discovery thread)
  uint64_t version_ = 0;
  std::string last_;  // the last published master and replicas (discovery thread)
};

}  // namespace keyfence::proxy
