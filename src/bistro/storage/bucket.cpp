#include "bistro/storage/bucket.hpp"

#include "bistro/core/files.hpp"

namespace bistro {

void Bucket::put_file(const std::string& key, const std::filesystem::path& file) {
  put(key, read_file(file));
}

void Bucket::get_file(const std::string& key, const std::filesystem::path& file) {
  write_file_atomic(file, get(key));
}

std::optional<Object> Bucket::get_object(const std::string& key) {
  auto info = head(key);
  if (!info) return std::nullopt;
  try {
    Object o{get(key), std::move(*info)};
    o.info.size = o.bytes.size();  // replaced between the two: the bytes read are what counts
    return o;
  } catch (const NotFound&) {
    return std::nullopt;  // removed between the two
  }
}

void check_key(const std::string& key, const std::string& bucket) {
  check(!key.empty() && key.size() <= 1024, "{}: invalid object key (empty or over 1024 bytes)",
        bucket);
  check(key.front() != '/', "{}: object key '{}' must not start with '/'", bucket, key);
  check(key.find('\0') == std::string::npos, "{}: object key contains a NUL byte", bucket);
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    const auto seg = std::string_view(key).substr(start, end - start);
    check(!seg.empty() && seg != "." && seg != "..",
          "{}: object key '{}' has an empty, '.' or '..' segment", bucket, key);
    start = end + 1;
  }
}

}  // namespace bistro
