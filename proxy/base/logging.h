// Log set-up: spdlog with one line per event, as text or as JSON. spdlog's
// patterns do not escape %v, so the JSON format is a formatter of its own
// that escapes every field (valid JSON whatever a key or message contains).
#pragma once

#include <memory>
#include <string>

#include <spdlog/formatter.h>

namespace keyfence::proxy {

// format: "text" or "json". Returns false for an unknown format.
bool SetUpLogging(const std::string& level, const std::string& format);

// The formatter behind --log-format json (for tests).
std::unique_ptr<spdlog::formatter> MakeJsonFormatter();

// JSON string escaping (quotes, backslash, control characters as \u00XX).
void AppendJsonEscaped(std::string& out, const char* data, size_t len);

}  // namespace keyfence::proxy
