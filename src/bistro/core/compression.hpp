// Whole-buffer decompression for data files: gzip (also dictzip .dz) through zlib, zstd through
// libzstd. Errors name the origin and the codec's reason.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace bistro {

std::string gunzip(std::string_view compressed, std::string_view origin);
std::string unzstd(std::string_view compressed, std::string_view origin);
std::string gzip(std::string_view plain);  // for tests and fixtures
std::string zstd(std::string_view plain);

// Reads a file, decompressing by extension: .gz/.dz (gzip), .zst (zstd), anything else as is.
std::string read_maybe_compressed(const std::filesystem::path& path);

// True if `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool valid_utf8(std::string_view s);

}  // namespace bistro
