#include "proxy/net/client_stream.h"

namespace keyfence::proxy {

namespace asio = boost::asio;

namespace {

void Tune(asio::ip::tcp::socket& s) {
  boost::system::error_code ec;
  s.set_option(asio::ip::tcp::no_delay(true), ec);
}
void Tune(asio::local::stream_protocol::socket&) {}

// Redis shows a Unix socket client as "<socket path>:0".
void Fill(const asio::ip::tcp::endpoint& e, std::string* ip, uint16_t* port) {
  *ip = e.address().to_string();
  *port = e.port();
}
void Fill(const asio::local::stream_protocol::endpoint& e, std::string* ip, uint16_t* port) {
  *ip = e.path();
  *port = 0;
}

}  // namespace

template <class Protocol>
SocketStream<Protocol>::SocketStream(Socket socket)
    : socket_(std::move(socket)), alive_(std::make_shared<bool>(true)) {
  boost::system::error_code ec;
  Tune(socket_);
  socket_.non_blocking(true, ec);
}

template <class Protocol>
SocketStream<Protocol>::~SocketStream() {
  *alive_ = false;
  Close();
}

template <class Protocol>
void SocketStream<Protocol>::AsyncWrite(const char* data, size_t n, WriteDone* done) {
  auto alive = alive_;
  asio::async_write(socket_, asio::buffer(data, n),
                    [done, alive](const boost::system::error_code& ec, size_t) {
                      if (*alive) done->OnWritten(ec);
                    });
}

template <class Protocol>
void SocketStream<Protocol>::Close() {
  boost::system::error_code ec;
  socket_.close(ec);
}

template <class Socket>
PeerInfo PeerOfSocket(Socket& s) {
  PeerInfo p;
  boost::system::error_code ec;
  auto remote = s.remote_endpoint(ec);
  if (!ec) Fill(remote, &p.remote_ip, &p.remote_port);
  auto local = s.local_endpoint(ec);
  if (!ec) Fill(local, &p.local_ip, &p.local_port);
  if (p.remote_ip.empty()) p.remote_ip = p.local_ip;  // a Unix client's socket has no name
  return p;
}

PeerInfo PeerOf(asio::ip::tcp::socket& s) { return PeerOfSocket(s); }
PeerInfo PeerOf(asio::local::stream_protocol::socket& s) { return PeerOfSocket(s); }

template <class Protocol>
PeerInfo SocketStream<Protocol>::Peer() {
  return PeerOf(socket_);
}

template class SocketStream<asio::ip::tcp>;
template class SocketStream<asio::local::stream_protocol>;

}  // namespace keyfence::proxy
