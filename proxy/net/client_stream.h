// A client's byte stream, whatever carries it: TCP, a Unix socket, TLS, all
// behind the same interface.
//
// Reads are non-blocking and driven by the worker's level-triggered ReadMux on
// native_handle(). A stream that buffers bytes above the socket (TLS records
// already decrypted) reports them in buffered(): the reader keeps reading
// while buffered() > 0, since the fd may not become readable again for them.
// Writes are asynchronous, one at a time; the data must stay valid until the
// callback runs. Worker-local.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>

namespace keyfence::proxy {

class WriteDone {
 public:
  virtual ~WriteDone() = default;
  virtual void OnWritten(const boost::system::error_code& ec) = 0;
};

struct PeerInfo {
  std::string remote_ip;
  uint16_t remote_port = 0;
  std::string local_ip;
  uint16_t local_port = 0;
};

// A verified client certificate's names (listeners[].tenant_from).
struct PeerCert {
  std::string cn;
  std::vector<std::string> dns;  // subjectAltName DNS entries
  std::vector<std::string> uri;  // subjectAltName URI entries (SPIFFE IDs)
};

class ClientStream {
 public:
  virtual ~ClientStream() = default;
  virtual int native_handle() = 0;
  // Non-blocking: bytes read into p (at most n); would_block/try_again when
  // nothing is there; eof or another error when the stream is finished.
  virtual size_t ReadSome(char* p, size_t n, boost::system::error_code& ec) = 0;
  virtual size_t buffered() const { return 0; }
  virtual void AsyncWrite(const char* data, size_t n, WriteDone* done) = 0;
  virtual void Close() = 0;
  // Addresses, read once when the stream starts.
  virtual PeerInfo Peer() = 0;
  // TLS: true until the handshake is done; then peer_cert() holds the
  // verified client certificate's names (null without one, or not TLS).
  virtual bool handshaking() const { return false; }
  virtual const PeerCert* peer_cert() const { return nullptr; }
};

// A socket stream (TCP, or a Unix socket for sidecars): non-blocking reads,
// asio writes.
template <class Protocol>
class SocketStream final : public ClientStream {
 public:
  using Socket = typename Protocol::socket;
  explicit SocketStream(Socket socket);
  ~SocketStream() override;
  int native_handle() override { return socket_.native_handle(); }
  size_t ReadSome(char* p, size_t n, boost::system::error_code& ec) override {
    return socket_.read_some(boost::asio::buffer(p, n), ec);
  }
  void AsyncWrite(const char* data, size_t n, WriteDone* done) override;
  void Close() override;
  PeerInfo Peer() override;

 private:
  Socket socket_;
  std::shared_ptr<bool> alive_;
};

// A connected socket's addresses (what SocketStream::Peer and TlsStream report).
PeerInfo PeerOf(boost::asio::ip::tcp::socket& s);
PeerInfo PeerOf(boost::asio::local::stream_protocol::socket& s);

using TcpStream = SocketStream<boost::asio::ip::tcp>;
using UnixStream = SocketStream<boost::asio::local::stream_protocol>;
extern template class SocketStream<boost::asio::ip::tcp>;
extern template class SocketStream<boost::asio::local::stream_protocol>;

}  // namespace keyfence::proxy
