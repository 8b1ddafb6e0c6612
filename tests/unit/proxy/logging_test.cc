// The JSON log format must be valid JSON whatever the message holds (spdlog
// patterns do not escape %v): checked with Python's json module.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "proxy/base/logging.h"

namespace {

std::string LogJson(const std::string& message) {
  std::ostringstream os;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(os);
  spdlog::logger logger("json-test", sink);
  logger.set_formatter(keyfence::proxy::MakeJsonFormatter());
  logger.warn("big request: key={}", message);
  logger.flush();
  return os.str();
}

}  // namespace

TEST_CASE("logging: JSON escaping of quotes, backslashes, control and high bytes") {
  std::string out;
  keyfence::proxy::AppendJsonEscaped(out, "a\"b\\c\nd\x01\xff", 9);
  CHECK(out == "a\\\"b\\\\c\\nd\\u0001\\u00ff");
}

TEST_CASE("logging: every JSON line parses, whatever the key holds") {
  const std::string nasty = std::string("k\"}{\\\n\r\t\x00\x1f\x7f\xc3\xa9 end", 20);
  std::string line = LogJson(nasty);
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);  // one line per event
  if (access("/usr/bin/python3", X_OK) != 0) {
    WARN("python3 missing: JSON validity not checked");
    return;
  }
  const char* path = "/tmp/keyfence-logging-test.json";
  {
    std::ofstream f(path, std::ios::binary);
    f << line;
  }
  std::string cmd = std::string("/usr/bin/python3 -c \"import json,sys; d=json.load(open('") +
                    path + "')); sys.exit(0 if d['level']=='warning' and 'end' in d['msg'] "
                           "else 1)\"";
  CHECK(std::system(cmd.c_str()) == 0);
  std::remove(path);
}

TEST_CASE("logging: LogEvent fields are JSON keys of their own, numbers stay numbers") {
  std::ostringstream os;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(os);
  auto logger = std::make_shared<spdlog::logger>("fields-test", sink);
  logger->set_formatter(keyfence::proxy::MakeJsonFormatter());
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  keyfence::proxy::SetJsonFieldsForTest(true);
  keyfence::proxy::LogEvent(spdlog::level::warn, "request rejected",
                            {{"tenant", "or\"ders"}, {"suppressed", uint64_t{41}}});
  keyfence::proxy::SetJsonFieldsForTest(false);
  keyfence::proxy::LogEvent(spdlog::level::warn, "request rejected",
                            {{"tenant", "a b"}, {"n", uint64_t{2}}, {"empty", ""}});
  spdlog::set_default_logger(previous);
  const std::string out = os.str();
  const size_t nl = out.find('\n');
  const std::string json = out.substr(0, nl), text = out.substr(nl + 1);
  CHECK(json.find(R"("msg":"request rejected","tenant":"or\"ders","suppressed":41})") !=
        std::string::npos);
  // text: key=value after the message, quoted where needed
  CHECK(text.find(R"(request rejected tenant=\"a b\" n=2 empty=\"\")") != std::string::npos);
}
