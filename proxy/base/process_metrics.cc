#include "proxy/base/process_metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace keyfence::proxy {

namespace {

prometheus::MetricFamily One(const char* name, const char* help, prometheus::MetricType type,
                             double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  prometheus::ClientMetric& m = f.metric.emplace_back();
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return f;
}

// Seconds since the epoch at which the system booted (/proc/stat btime).
double BootTime() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessFamilies() {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // The fields after the command name (in parentheses, which may hold spaces).
    const size_t close = line.rfind(')');
    std::istringstream rest(close == std::string::npos ? "" : line.substr(close + 2));
    std::string f[24];
    for (auto& x : f) rest >> x;
    // rest starts at field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    auto num = [&](int field) { return std::stod(f[field - 3].empty() ? "0" : f[field - 3]); };
    try {
      out.push_back(One("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                        MetricType::Counter, (num(14) + num(15)) / ticks));
      out.push_back(One("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                        MetricType::Gauge, num(23)));
      out.push_back(One("process_resident_memory_bytes", "Resident memory size in bytes.",
                        MetricType::Gauge, num(24) * page));
      // Without /proc/stat (systemd's ProcSubset=pid) the boot time is unknown: left out.
      if (const double boot = BootTime(); boot > 0) {
        out.push_back(One("process_start_time_seconds",
                          "Start time of the process since unix epoch in seconds.",
                          MetricType::Gauge, boot + num(22) / ticks));
      }
    } catch (const std::exception&) {  // an unexpected /proc format: these are left out
    }
  }
  std::error_code ec;
  size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  if (!ec) {
    out.push_back(One("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                      static_cast<double>(fds)));
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    out.push_back(One("process_max_fds", "Maximum number of open file descriptors.",
                      MetricType::Gauge,
                      rl.rlim_cur == RLIM_INFINITY ? 0.0 : static_cast<double>(rl.rlim_cur)));
  }
  return out;
}

}  // namespace keyfence::proxy
