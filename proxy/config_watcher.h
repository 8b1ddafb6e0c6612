// Watches the config file so that a plain rewrite, an editor's rename and a
// Kubernetes ConfigMap update (the mounted directory's `..data` symlink swap)
// all trigger a reload (PLATFORM.md note 5): an inotify watch on the file's
// DIRECTORY (a watch on the file itself dies with the first swap), plus a
// content-hash poll every 2 s as a fallback. Changes are debounced and only a
// changed content triggers `on_change`. Runs on the control io_context.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

namespace keyfence::proxy {

class ConfigWatcher {
 public:
  ConfigWatcher(boost::asio::io_context& io, std::string path, std::function<void()> on_change);
  ~ConfigWatcher();
  void Start();
  void Stop();
  // The content now on disk is the running one (after SIGHUP or POST /reload).
  void Remember();
  // Files whose content counts as the config's too (listeners' TLS files);
  // call before Remember().
  void SetExtraFiles(std::vector<std::string> files);

 private:
  void ArmInotify();
  void Changed();
  void Poll();
  uint64_t ContentHash() const;

  boost::asio::io_context& io_;
  std::string path_;
  std::string dir_;
  std::vector<std::string> extra_;
  std::function<void()> on_change_;
  int inotify_fd_ = -1;
  boost::asio::posix::stream_descriptor desc_;
  boost::asio::steady_timer debounce_;
  boost::asio::steady_timer poll_;
  uint64_t last_hash_ = 0;
  bool stopped_ = false;
  char events_[4096];
};

}  // namespace keyfence::proxy
