// Bucket: where miners publish updates and validators fetch them. One interface, two backends:
// file:// (a directory: the embedded default on one machine) and s3:// (AWS S3, Cloudflare R2,
// MinIO, Ceph, ... over SigV4). Keys are '/'-separated paths without "." or ".." segments.
// Failures throw bistro::Error naming the bucket, the key and the reason; a missing object is
// NotFound so callers can tell "not published yet" from "broken".
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bistro/core/error.hpp"

namespace bistro {

class NotFound : public Error {
 public:
  using Error::Error;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;
  // Last modification, ms since the epoch (head(), get_object(); 0 = unknown).
  int64_t modified_ms = 0;
  bool operator==(const ObjectInfo&) const = default;
};

// An object's bytes with what head() tells of it.
struct Object {
  std::string bytes;
  ObjectInfo info;
};

class Bucket {
 public:
  virtual ~Bucket() = default;
  // Replaces the object atomically: readers see the old bytes or the new, never a mix.
  virtual void put(const std::string& key, std::string_view data) = 0;
  virtual std::string get(const std::string& key) = 0;
  // Bytes [offset, offset + length), clipped at the end of the object.
  virtual std::string get_range(const std::string& key, uint64_t offset, uint64_t length) = 0;
  virtual std::optional<ObjectInfo> head(const std::string& key) = 0;
  // The bytes and the info at once (nullopt: no such object). S3 answers both in one GET: a
  // poller that needs the Last-Modified of what it reads sends one request, not a HEAD and a GET.
  // The default asks head() then get().
  virtual std::optional<Object> get_object(const std::string& key);
  // Every object whose key starts with prefix, sorted by key (all pages).
  virtual std::vector<ObjectInfo> list(const std::string& prefix) = 0;
  // Removing a missing object is not an error (as in S3).
  virtual void remove(const std::string& key) = 0;
  virtual std::string url() const = 0;

  virtual void put_file(const std::string& key, const std::filesystem::path& file);
  // Writes the object to `file` atomically: a failed download never leaves a partial file.
  virtual void get_file(const std::string& key, const std::filesystem::path& file);
};

// Throws bistro::Error for "", absolute keys, "." or ".." segments, empty segments, NUL bytes.
void check_key(const std::string& key, const std::string& bucket);

}  // namespace bistro
