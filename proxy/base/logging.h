// Log set-up: spdlog with one line per event, as text or as JSON. spdlog's
// patterns do not escape %v, so the JSON format is a formatter of its own
// that escapes every field (valid JSON whatever a key or message contains).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/common.h>
#include <spdlog/formatter.h>

namespace keyfence::proxy {

// format: "text" or "json". Returns false for an unknown format.
bool SetUpLogging(const std::string& level, const std::string& format);

// The formatter behind --log-format json (for tests).
std::unique_ptr<spdlog::formatter> MakeJsonFormatter();

// One field of a structured log event: in JSON logs a key of its own (a number
// stays a number), in text logs "key=value" after the message.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), text(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), text(v) {}
  LogField(std::string_view k, const char* v) : key(k), text(v) {}
  LogField(std::string_view k, uint64_t v) : key(k), number(v), is_number(true) {}
  std::string_view key;
  std::string_view text;
  uint64_t number = 0;
  bool is_number = false;
};

// Logs `msg` with its fields (decisions, reloads, backend reconnects): JSON logs
// put each field in a key of its own, never inside "msg".
void LogEvent(spdlog::level::level_enum level, std::string_view msg,
              std::initializer_list<LogField> fields);

// Tests: whether LogEvent hands its fields to the JSON formatter (SetUpLogging sets it).
void SetJsonFieldsForTest(bool json);

// JSON string escaping (quotes, backslash, control characters as \u00XX).
void AppendJsonEscaped(std::string& out, const char* data, size_t len);

}  // namespace keyfence::proxy
