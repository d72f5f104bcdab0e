// A WebSocket client (RFC 6455) for JSON-RPC to substrate nodes: libcurl opens the TCP (and, for
// wss://, TLS) connection in connect-only mode; the upgrade handshake and the framing are done
// here. Text messages only (what JSON-RPC uses); pings are answered; a close, a protocol error or
// a timeout throws bistro::Error naming the URL, and the caller reconnects.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace bistro::substrate {

class WebSocket {
 public:
  WebSocket(const std::string& url, double timeout_s);  // ws://host[:port][/path] or wss://
  ~WebSocket();
  WebSocket(const WebSocket&) = delete;
  WebSocket& operator=(const WebSocket&) = delete;

  void send_text(std::string_view message);
  std::string receive();  // the next complete text (or binary) message

 private:
  void send_raw(std::string_view bytes);
  void fill(size_t n);  // until buffer_ holds at least n bytes
  void send_frame(uint8_t opcode, std::string_view payload);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string url_, buffer_;
  double timeout_s_;
};

// The Sec-WebSocket-Accept value for a key: base64(SHA-1(key ++ the RFC's GUID)).
std::string websocket_accept(std::string_view key);

}  // namespace bistro::substrate
