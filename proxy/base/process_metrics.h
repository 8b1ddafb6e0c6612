// The standard process metrics of Prometheus client libraries (Linux, from /proc):
// process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds. Read at scrape time.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

namespace keyfence::proxy {

std::vector<prometheus::MetricFamily> ProcessFamilies();

}  // namespace keyfence::proxy
