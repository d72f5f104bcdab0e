// FileBucket: a directory as a bucket (file:///path). Objects are files under it; puts go through
// a temporary file and rename, so several processes may read and write at once.
#pragma once

#include "bistro/storage/bucket.hpp"

namespace bistro {

class FileBucket final : public Bucket {
 public:
  explicit FileBucket(std::filesystem::path root);  // created if missing

  void put(const std::string& key, std::string_view data) override;
  std::string get(const std::string& key) override;
  std::string get_range(const std::string& key, uint64_t offset, uint64_t length) override;
  std::optional<ObjectInfo> head(const std::string& key) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  void remove(const std::string& key) override;
  std::string url() const override { return "file://" + root_.string(); }

 private:
  std::filesystem::path path_of(const std::string& key) const;
  std::filesystem::path root_;
};

}  // namespace bistro
