#include "bistro/storage/file_bucket.hpp"

#include <chrono>

#include <algorithm>
#include <fstream>

#include "bistro/core/files.hpp"

namespace bistro {
namespace fs = std::filesystem;

namespace {
// Temporary files of AtomicFile ("name.tmp.PID.N") are not objects.
bool is_temporary(const std::string& name) {
  return name.find(".tmp.") != std::string::npos;
}
}  // namespace

FileBucket::FileBucket(fs::path root) : root_(std::move(root)) {
  fs::create_directories(root_);
}

fs::path FileBucket::path_of(const std::string& key) const {
  check_key(key, url());
  check(!is_temporary(key), "{}: object key '{}' uses the reserved '.tmp.' infix", url(), key);
  return root_ / key;
}

void FileBucket::put(const std::string& key, std::string_view data) {
  const auto p = path_of(key);
  fs::create_directories(p.parent_path());
  write_file_atomic(p, data);
}

std::string FileBucket::get(const std::string& key) {
  const auto p = path_of(key);
  if (!fs::is_regular_file(p)) throw NotFound(fmt::format("{}/{}: no such object", url(), key));
  return read_file(p);
}

std::string FileBucket::get_range(const std::string& key, uint64_t offset, uint64_t length) {
  const auto p = path_of(key);
  std::ifstream f(p, std::ios::binary);
  if (!f) throw NotFound(fmt::format("{}/{}: no such object", url(), key));
  const uint64_t size = fs::file_size(p);
  if (offset >= size) return {};
  std::string out(std::min(length, size - offset), '\0');
  f.seekg(static_cast<std::streamoff>(offset));
  f.read(out.data(), static_cast<std::streamsize>(out.size()));
  check(static_cast<size_t>(f.gcount()) == out.size(), "{}/{}: short read", url(), key);
  return out;
}

std::optional<ObjectInfo> FileBucket::head(const std::string& key) {
  const auto p = path_of(key);
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec || !fs::is_regular_file(p)) return std::nullopt;
  ObjectInfo info{key, size, "", 0};
  const auto mtime = fs::last_write_time(p, ec);
  if (!ec)
    info.modified_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                           .count();
  return info;
}

std::vector<ObjectInfo> FileBucket::list(const std::string& prefix) {
  std::vector<ObjectInfo> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const auto key = fs::relative(it->path(), root_).generic_string();
    if (is_temporary(it->path().filename().string()) || key.rfind(prefix, 0) != 0) continue;
    std::error_code size_ec;
    const auto size = fs::file_size(it->path(), size_ec);
    if (!size_ec) out.push_back({key, size, ""});  // a file removed meanwhile is skipped
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.key < b.key; });
  return out;
}

void FileBucket::remove(const std::string& key) {
  std::error_code ec;
  fs::remove(path_of(key), ec);
}

}  // namespace bistro
