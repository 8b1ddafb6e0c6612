// A one-request HTTP/1.1 client for keyfence ctl (Boost.Beast), bounded in time.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace keyfence::proxy::ctl {

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// `url`: http://host:port (an IPv6 host in brackets). nullopt, with *error set,
// when the server could not be reached or did not answer within `timeout`.
std::optional<HttpAnswer> HttpRequest(const std::string& url, const std::string& method,
                                      const std::string& target, const std::string& token,
                                      const std::string& body, std::chrono::milliseconds timeout,
                                      std::string* error);

}  // namespace keyfence::proxy::ctl
