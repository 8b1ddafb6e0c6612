#include "proxy/base/logging.h"

#include <atomic>
#include <cstdio>
#include <memory>

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace keyfence::proxy {

void AppendJsonEscaped(std::string& out, const char* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(data[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else if (c >= 0x80) {
          // Not necessarily UTF-8 (keys are binary): escape every high byte.
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
}

namespace {

// The fields of the event being logged on this thread (LogEvent); the logger is
// synchronous, so the formatter runs on the same thread, within the call.
thread_local const std::initializer_list<LogField>* t_fields = nullptr;
std::atomic<bool> g_json{false};

void AppendField(std::string& line, const LogField& f, bool json) {
  if (json) {
    line += ",\"";
    AppendJsonEscaped(line, f.key.data(), f.key.size());
    line += "\":";
  } else {
    line += ' ';
    line.append(f.key);
    line += '=';
  }
  if (f.is_number) {
    line += std::to_string(f.number);
    return;
  }
  bool quote = json || f.text.empty();
  for (unsigned char c : f.text) {  // client-chosen bytes (a command name) never raw
    quote = quote || c <= 0x20 || c == 0x7f || c >= 0x80 || c == '"' || c == '=';
  }
  if (quote) line += '"';
  if (json || quote) {
    AppendJsonEscaped(line, f.text.data(), f.text.size());
  } else {
    line.append(f.text);
  }
  if (quote) line += '"';
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto t = system_clock::to_time_t(msg.time);
    auto ms = duration_cast<milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[96];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    std::string line = "{\"ts\":\"";
    line += ts;
    line += "\",\"level\":\"";
    auto lv = spdlog::level::to_string_view(msg.level);
    line.append(lv.data(), lv.size());
    line += "\",\"thread\":";
    line += std::to_string(msg.thread_id);
    line += ",\"msg\":\"";
    AppendJsonEscaped(line, msg.payload.data(), msg.payload.size());
    line += '"';
    if (t_fields != nullptr) {
      for (const LogField& f : *t_fields) AppendField(line, f, true);
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void LogEvent(spdlog::level::level_enum level, std::string_view msg,
              std::initializer_list<LogField> fields) {
  if (!spdlog::should_log(level)) return;
  if (g_json.load(std::memory_order_relaxed)) {
    t_fields = &fields;
    spdlog::log(level, "{}", msg);
    t_fields = nullptr;
    return;
  }
  std::string line(msg);
  for (const LogField& f : fields) AppendField(line, f, false);
  spdlog::log(level, "{}", line);
}

void SetJsonFieldsForTest(bool json) { g_json.store(json); }

std::unique_ptr<spdlog::formatter> MakeJsonFormatter() { return std::make_unique<JsonFormatter>(); }

bool SetUpLogging(const std::string& level, const std::string& format) {
  auto lv = spdlog::level::from_str(level);
  if (lv == spdlog::level::off && level != "off") return false;
  auto logger = spdlog::stderr_logger_mt("keyfence");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lv);
  g_json.store(format == "json");
  if (format == "json") {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
  } else if (format == "text") {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  } else {
    return false;
  }
  spdlog::flush_on(spdlog::level::info);
  return true;
}

}  // namespace keyfence::proxy
