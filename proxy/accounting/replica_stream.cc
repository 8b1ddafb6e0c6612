#include "proxy/accounting/replica_stream.h"

#include <span>
#include <string_view>
#include <vector>

#include "protocol/writer.h"
#include "proxy/net/blocking_socket.h"

namespace keyfence::proxy::accounting {

namespace {

// The master's replies, line by line, over a BlockingSocket.
class Link {
 public:
  explicit Link(const std::atomic<bool>* cancel) : socket_(cancel) {}
  std::string Connect(const config::Endpoint& ep, int timeout_ms,
                      const config::BackendTls* tls) {
    return socket_.Connect(ep, timeout_ms, tls);
  }
  bool Send(std::span<const std::string_view> args) {
    std::string out;
    protocol::AppendCommand(out, args);
    return socket_.SendAll(out, kIdleTimeoutMs);
  }
  bool Send(std::initializer_list<std::string_view> args) {
    return Send(std::span<const std::string_view>(args.begin(), args.size()));
  }
  bool Fill() { return socket_.Fill(kIdleTimeoutMs); }
  // One line without its "\r\n"; a lone "\n" (the master's keepalive) is
  // returned as an empty line.
  bool Line(std::string* line) {
    std::string& buf = socket_.buffer();
    for (;;) {
      const size_t nl = buf.find('\n');
      if (nl != std::string::npos) {
        size_t end = nl;
        if (end > 0 && buf[end - 1] == '\r') --end;
        line->assign(buf, 0, end);
        buf.erase(0, nl + 1);
        return true;
      }
      if (buf.size() > 4096 || !Fill()) return false;
    }
  }
  std::string& buffered() { return socket_.buffer(); }

 private:
  BlockingSocket socket_;
};

// The next line that is not a keepalive.
bool Reply(Link& link, std::string* line) {
  do {
    if (!link.Line(line)) return false;
  } while (line->empty());
  return true;
}

}  // namespace

StreamResult StreamRdb(const config::Endpoint& node, const config::Backend& be,
                       rdb::RdbParser& parser, const std::function<void(uint64_t)>& progress,
                       const std::atomic<bool>* cancel) {
  StreamResult res;
  Link link(cancel);
  if (std::string err = link.Connect(node, static_cast<int>(be.connect_timeout_ms), be.tls.get());
      !err.empty()) {
    res.error = err;
    return res;
  }
  std::string line;
  if (!be.password.empty()) {
    std::vector<std::string_view> auth{"AUTH"};
    if (!be.username.empty()) auth.push_back(be.username);
    auth.push_back(be.password);
    if (!link.Send(auth) || !Reply(link, &line) || line != "+OK") {
      res.error = "AUTH refused";
      return res;
    }
  }
  // rdb-only (7.0+): the master keeps no backlog for us and closes after
  // the RDB. An older master answers an error, which is harmless.
  if (!link.Send({"REPLCONF", "rdb-only", "1"}) || !Reply(link, &line)) {
    res.error = "connection lost during the handshake";
    return res;
  }
  if (!link.Send({"REPLCONF", "capa", "eof"}) || !Reply(link, &line) || line != "+OK") {
    res.error = "REPLCONF refused: " + line;
    return res;
  }
  if (!link.Send({"PSYNC", "?", "-1"}) || !Reply(link, &line)) {
    res.error = "connection lost before the sync started";
    return res;
  }
  if (!line.starts_with("+FULLRESYNC")) {
    // e.g. -NOPERM: the user lacks the replication commands.
    res.error = "the master refused to sync: " + line.substr(0, 200);
    return res;
  }
  if (!Reply(link, &line) || line.size() < 2 || line[0] != '$') {
    res.error = "no RDB payload after FULLRESYNC";
    return res;
  }
  // `$EOF:<40 bytes>`: diskless, ends with the mark; `$<len>`: from disk.
  const bool eof_mark = line.starts_with("$EOF:");
  uint64_t remaining = eof_mark ? UINT64_MAX : std::strtoull(line.c_str() + 1, nullptr, 10);
  std::string& buf = link.buffered();
  for (;;) {
    if (!buf.empty()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, buf.size()));
      res.bytes += n;
      remaining -= n;
      const bool fed = parser.Feed(std::string_view(buf.data(), n));
      buf.clear();
      if (progress) progress(res.bytes);
      if (!fed) {
        res.error = "bad RDB: " + parser.error();
        return res;
      }
      if (parser.done()) break;  // what follows (the EOF mark) is not ours
    }
    if (remaining == 0) break;
    if (!link.Fill()) break;
  }
  if (!parser.done() && cancel != nullptr && cancel->load()) {
    res.error = "stopped (keyfence is shutting down)";
    return res;
  }
  if (!parser.done()) {
    res.error = "the RDB stream ended early after " + std::to_string(res.bytes) + " bytes";
    return res;
  }
  res.ok = true;
  return res;
}

}  // namespace keyfence::proxy::accounting
