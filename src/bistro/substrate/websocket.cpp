#include "bistro/substrate/websocket.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sodium.h>

#include <chrono>

#include "bistro/core/error.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro::substrate {
namespace {

constexpr uint64_t kMaxMessage = 256ull << 20;

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

std::string websocket_accept(std::string_view key) {
  const std::string input = std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return base64({reinterpret_cast<const char*>(digest), sizeof digest});
}

struct WebSocket::Impl {
  CURL* curl = nullptr;
  curl_socket_t socket = CURL_SOCKET_BAD;
  ~Impl() {
    if (curl) curl_easy_cleanup(curl);
  }
  void wait(bool for_read, double timeout_s, const std::string& url) {
    pollfd p{static_cast<int>(socket), static_cast<short>(for_read ? POLLIN : POLLOUT), 0};
    const int r = poll(&p, 1, static_cast<int>(timeout_s * 1000));
    check(r > 0, "websocket {}: timed out after {} s", url, timeout_s);
  }
};

WebSocket::WebSocket(const std::string& url, double timeout_s)
    : impl_(std::make_unique<Impl>()), url_(url), timeout_s_(timeout_s) {
  const bool tls = url.rfind("wss://", 0) == 0;
  check(tls || url.rfind("ws://", 0) == 0, "websocket {}: not a ws:// or wss:// URL", url);
  std::string rest = url.substr(tls ? 6 : 5);
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  const std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  impl_->curl = curl_easy_init();
  check(impl_->curl != nullptr, "websocket {}: curl_easy_init failed", url);
  const std::string http_url = (tls ? "https://" : "http://") + authority + path;
  curl_easy_setopt(impl_->curl, CURLOPT_URL, http_url.c_str());
  curl_easy_setopt(impl_->curl, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(impl_->curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  const CURLcode rc = curl_easy_perform(impl_->curl);
  check(rc == CURLE_OK, "websocket {}: cannot connect: {}", url, curl_easy_strerror(rc));
  curl_easy_getinfo(impl_->curl, CURLINFO_ACTIVESOCKET, &impl_->socket);
  check(impl_->socket != CURL_SOCKET_BAD, "websocket {}: no socket", url);

  ensure_sodium();
  std::string nonce(16, '\0');
  randombytes_buf(nonce.data(), nonce.size());
  const std::string key = base64(nonce);
  send_raw(
      fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
                  path, authority, key));
  size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    check(buffer_.size() < 16384, "websocket {}: upgrade response too long", url);
    fill(buffer_.size() + 1);
  }
  std::string head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  check(head.rfind("HTTP/1.1 101", 0) == 0, "websocket {}: the node refused the upgrade: {}", url,
        head.substr(0, head.find('\r')));
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  check(lower.find("sec-websocket-accept: " +
                   [&] {
                     std::string a = websocket_accept(key);
                     for (char& c : a)
                       c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                     return a;
                   }()) != std::string::npos,
        "websocket {}: wrong Sec-WebSocket-Accept in the upgrade response", url);
}

WebSocket::~WebSocket() {
  if (impl_ && impl_->curl) {
    try {
      send_frame(0x8, "");  // close
    } catch (...) {
    }
  }
}

void WebSocket::send_raw(std::string_view bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    size_t n = 0;
    const CURLcode rc = curl_easy_send(impl_->curl, bytes.data() + sent, bytes.size() - sent, &n);
    if (rc == CURLE_AGAIN) {
      impl_->wait(false, timeout_s_, url_);
      continue;
    }
    check(rc == CURLE_OK, "websocket {}: send failed: {}", url_, curl_easy_strerror(rc));
    sent += n;
  }
}

void WebSocket::fill(size_t n) {
  char chunk[65536];
  while (buffer_.size() < n) {
    size_t got = 0;
    const CURLcode rc = curl_easy_recv(impl_->curl, chunk, sizeof chunk, &got);
    if (rc == CURLE_AGAIN) {
      impl_->wait(true, timeout_s_, url_);
      continue;
    }
    check(rc == CURLE_OK, "websocket {}: receive failed: {}", url_, curl_easy_strerror(rc));
    check(got > 0, "websocket {}: the node closed the connection", url_);
    buffer_.append(chunk, got);
  }
}

void WebSocket::send_frame(uint8_t opcode, std::string_view payload) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  const uint64_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  uint8_t mask[4];
  randombytes_buf(mask, sizeof mask);  // clients must mask every frame
  f.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < payload.size(); ++i)
    f.push_back(static_cast<char>(payload[i] ^ static_cast<char>(mask[i % 4])));
  send_raw(f);
}

void WebSocket::send_text(std::string_view message) {
  send_frame(0x1, message);
}

std::string WebSocket::receive() {
  std::string message;
  for (;;) {
    fill(2);
    const uint8_t b0 = static_cast<uint8_t>(buffer_[0]), b1 = static_cast<uint8_t>(buffer_[1]);
    const bool fin = b0 & 0x80, masked = b1 & 0x80;
    const uint8_t opcode = b0 & 0x0f;
    uint64_t len = b1 & 0x7f;
    size_t at = 2;
    if (len == 126) {
      fill(4);
      len = (static_cast<uint64_t>(static_cast<uint8_t>(buffer_[2])) << 8) |
            static_cast<uint8_t>(buffer_[3]);
      at = 4;
    } else if (len == 127) {
      fill(10);
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(buffer_[2 + i]);
      at = 10;
    }
    check(len <= kMaxMessage && message.size() + len <= kMaxMessage,
          "websocket {}: message of {} bytes is too large", url_, len);
    const size_t mask_at = at;
    if (masked) at += 4;
    fill(at + len);
    std::string payload = buffer_.substr(at, len);
    if (masked)
      for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= buffer_[mask_at + i % 4];
    buffer_.erase(0, at + len);
    switch (opcode) {
      case 0x0:
      case 0x1:
      case 0x2:
        message += payload;
        if (fin) return message;
        break;
      case 0x8:
        fail("websocket {}: the node closed the connection", url_);
      case 0x9:
        send_frame(0xA, payload);  // pong
        break;
      case 0xA:
        break;
      default:
        fail("websocket {}: unknown frame opcode {}", url_, opcode);
    }
  }
}

}  // namespace bistro::substrate
