// Files: atomic writes and read-only memory maps.
//
// Every file bistro writes (checkpoints, configs, state) goes through AtomicFile: bytes land in a
// temporary file beside the target, are fsync'ed, then renamed over it, so a reader or a crash
// sees either the old file or the new one, never half of one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace bistro {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();  // discards the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view s) { write(s.data(), s.size()); }
  // fsync, rename over the target, fsync the directory.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
};

// Writes `bytes` to `path` atomically.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
// Reads a whole file; throws bistro::Error naming the path on failure.
std::string read_file(const std::filesystem::path& path);
// $BISTRO_HOME, else ~/.bistro: the corpus, the local chain, caches, neuron state and localnet
// runs live under it by default.
std::filesystem::path bistro_home();

// A read-only memory map of a whole file. Reading a large checkpoint through it costs page cache,
// not a second copy in the heap.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  // Drops the pages wholly inside `range` from this process's resident set once they have been
  // consumed (they are re-read from the file if touched again). Keeps loading a checkpoint at
  // about one copy of the weights in memory instead of two.
  void release(std::span<const std::byte> range) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace bistro
