#include "proxy/backend/standalone_backend.h"

#include "protocol/writer.h"

namespace keyfence::proxy {

std::string& StandaloneBackend::PrepareSlow(int proto, BackendHint hint) {
  if (server_ == nullptr) server_ = &pool_.Get(host_.settings().nodes[0]);
  BackendConn& c = pool_.Shared(*server_, proto, hint);
  if (host_.settings().connections_per_node <= 1 && hint.user == nullptr) {
    fast_[proto == 3 ? 1 : 0] = &c;
  }
  prepared_ = &c;
  prepared_down_ = !c.Available();
  if (prepared_down_) {
    down_.clear();
    return down_;
  }
  return c.out();
}

void StandaloneBackend::CommitDown(ReplySink* sink, uint64_t tag, SendFlags) {
  prepared_down_ = false;
  down_.clear();
  std::string e;
  protocol::AppendError(e, prepared_->down_error());
  if (sink != nullptr) sink->OnReply(tag, e);
}

std::unique_ptr<BackendConn> StandaloneBackend::Dedicated(int, int proto, std::string*,
                                                          const BackendUser* user) {
  return pool_.TakeDedicated(host_.settings().nodes[0], proto, user);
}

const std::vector<config::Endpoint>& StandaloneBackend::Masters() {
  if (masters_.empty()) masters_.push_back(host_.settings().nodes[0]);
  return masters_;
}

void StandaloneBackend::CheckTimeouts(uint64_t now_ns) {
  pool_.CheckTimeouts(now_ns, uint64_t{host_.settings().request_timeout_ms} * 1000000);
}

void StandaloneBackend::Reconfigure() {
  pool_.DrainAll();
  server_ = nullptr;
  fast_[0] = fast_[1] = nullptr;
  masters_.clear();
}

}  // namespace keyfence::proxy
