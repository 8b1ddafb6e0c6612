#include "proxy/config_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

namespace keyfence::proxy {

namespace asio = boost::asio;

ConfigWatcher::ConfigWatcher(asio::io_context& io, std::string path,
                             std::function<void()> on_change)
    : io_(io),
      path_(std::move(path)),
      on_change_(std::move(on_change)),
      desc_(io),
      debounce_(io),
      poll_(io) {
  size_t slash = path_.rfind('/');
  dir_ = slash == std::string::npos ? "." : path_.substr(0, slash == 0 ? 1 : slash);
}

ConfigWatcher::~ConfigWatcher() { Stop(); }

uint64_t ConfigWatcher::ContentHash() const {
  std::ifstream f(path_, std::ios::binary);  // follows symlinks (..data/keyfence.yaml)
  if (!f) return 0;
  std::ostringstream ss;
  ss << f.rdbuf();
  // The files the config names (TLS certificates and keys): a rotation of
  // them reloads too. One that cannot be read counts as empty (the reload
  // then reports it).
  for (const std::string& extra : extra_) {
    std::ifstream e(extra, std::ios::binary);
    ss << '\0' << extra << '\0';
    if (e) ss << e.rdbuf();
  }
  return std::hash<std::string>{}(ss.str()) | 1;  // 0 means "unreadable"
}

void ConfigWatcher::SetExtraFiles(std::vector<std::string> files) { extra_ = std::move(files); }

void ConfigWatcher::Remember() { last_hash_ = ContentHash(); }

void ConfigWatcher::Start() {
  Remember();
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ >= 0 &&
      inotify_add_watch(inotify_fd_, dir_.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MODIFY |
                            IN_ATTRIB) >= 0) {
    desc_.assign(inotify_fd_);
    ArmInotify();
  } else {
    spdlog::warn("config watch: inotify on {} unavailable; polling only", dir_);
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    inotify_fd_ = -1;
  }
  Poll();
}

void ConfigWatcher::Stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ec;
  desc_.close(ec);
  debounce_.cancel();
  poll_.cancel();
}

void ConfigWatcher::ArmInotify() {
  desc_.async_wait(asio::posix::descriptor_base::wait_read,
                   [this](const boost::system::error_code& ec) {
                     if (ec || stopped_) return;
                     // Drain the events; any event in the directory may be the
                     // swap (the content check below decides).
                     while (::read(inotify_fd_, events_, sizeof events_) > 0) {
                     }
                     Changed();
                     ArmInotify();
                   });
}

void ConfigWatcher::Changed() {
  debounce_.expires_after(std::chrono::milliseconds(100));
  debounce_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    uint64_t h = ContentHash();
    if (h == 0 || h == last_hash_) return;
    last_hash_ = h;
    spdlog::info("config file {} (or a file it names) changed: reloading", path_);
    on_change_();
  });
}

void ConfigWatcher::Poll() {
  poll_.expires_after(std::chrono::seconds(2));
  poll_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    uint64_t h = ContentHash();
    if (h != 0 && h != last_hash_) Changed();
    Poll();
  });
}

}  // namespace keyfence::proxy
