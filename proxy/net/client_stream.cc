#include "proxy/net/client_stream.h"

namespace keyfence::proxy {

namespace asio = boost::asio;

TcpStream::TcpStream(asio::ip::tcp::socket socket)
    : socket_(std::move(socket)), alive_(std::make_shared<bool>(true)) {
  boost::system::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);
}

TcpStream::~TcpStream() {
  *alive_ = false;
  Close();
}

void TcpStream::AsyncWrite(const char* data, size_t n, WriteDone* done) {
  auto alive = alive_;
  asio::async_write(socket_, asio::buffer(data, n),
                    [done, alive](const boost::system::error_code& ec, size_t) {
                      if (*alive) done->OnWritten(ec);
                    });
}

void TcpStream::Close() {
  boost::system::error_code ec;
  socket_.close(ec);
}

PeerInfo TcpStream::Peer() {
  PeerInfo p;
  boost::system::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  if (!ec) {
    p.remote_ip = remote.address().to_string();
    p.remote_port = remote.port();
  }
  auto local = socket_.local_endpoint(ec);
  if (!ec) {
    p.local_ip = local.address().to_string();
    p.local_port = local.port();
  }
  return p;
}

}  // namespace keyfence::proxy
