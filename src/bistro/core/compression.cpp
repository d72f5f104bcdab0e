#include "bistro/core/compression.hpp"

#include <zlib.h>
#include <zstd.h>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"

namespace bistro {

std::string gunzip(std::string_view in, std::string_view origin) {
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header. Concatenated members are decoded one after another.
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail("{}: zlib init failed", origin);
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char buf[1 << 16];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // next gzip member
      continue;
    }
    if (rc != Z_OK) {
      const std::string why = zs.msg ? zs.msg : "corrupt or truncated data";
      inflateEnd(&zs);
      fail("{}: gzip: {}", origin, why);
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      fail("{}: gzip: truncated stream", origin);
    }
  }
  inflateEnd(&zs);
  return out;
}

std::string gzip(std::string_view plain) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, plain.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  zs.avail_in = static_cast<uInt>(plain.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string unzstd(std::string_view in, std::string_view origin) {
  ZSTD_DStream* ds = ZSTD_createDStream();
  ZSTD_initDStream(ds);
  std::string out;
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  char buf[1 << 16];
  size_t last = 1;
  while (input.pos < input.size) {
    ZSTD_outBuffer output{buf, sizeof buf, 0};
    last = ZSTD_decompressStream(ds, &output, &input);
    if (ZSTD_isError(last)) {
      const std::string why = ZSTD_getErrorName(last);
      ZSTD_freeDStream(ds);
      fail("{}: zstd: {}", origin, why);
    }
    out.append(buf, output.pos);
  }
  // Drain whatever the decoder still holds.
  while (last != 0) {
    ZSTD_outBuffer output{buf, sizeof buf, 0};
    last = ZSTD_decompressStream(ds, &output, &input);
    if (ZSTD_isError(last)) break;
    out.append(buf, output.pos);
    if (output.pos == 0) break;
  }
  ZSTD_freeDStream(ds);
  check(last == 0, "{}: zstd: truncated stream", origin);
  return out;
}

std::string zstd(std::string_view plain) {
  std::string out(ZSTD_compressBound(plain.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), plain.data(), plain.size(), 3);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

std::string read_maybe_compressed(const std::filesystem::path& path) {
  const auto ext = path.extension().string();
  std::string raw = read_file(path);
  if (ext == ".gz" || ext == ".dz") return gunzip(raw, path.string());
  if (ext == ".zst") return unzstd(raw, path.string());
  return raw;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned c = *p;
    int n;
    uint32_t cp;
    if (c < 0x80) {
      ++p;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

}  // namespace bistro
