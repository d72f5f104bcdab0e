// safetensors: an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the tensor bytes. Never pickle: a peer's file is data, not code.
//
// The reader treats every file as hostile: it checks sizes first, then structure, then values, and
// throws bistro::Error naming the file and the reason. It reads through a memory map, so loading a
// large checkpoint does not need a second copy of it in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bistro {

class MappedFile;

namespace safetensors {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);
std::optional<DType> parse_dtype(std::string_view name);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data section
  uint64_t end = 0;
  uint64_t numel() const;
};

struct Limits {
  uint64_t max_header_bytes = 100ull << 20;  // the reference implementation's limit
  uint64_t max_file_bytes = ~0ull;
};

// A parsed and validated header over a byte buffer (whole file: 8 + N + data).
class View {
 public:
  // Validates: header length within the buffer and the limit, JSON object, known dtypes, shapes of
  // non-negative dims whose byte size matches the offsets, offsets within the data section, no
  // overlap, no holes, no duplicate names, metadata a map of strings.
  static View parse(std::span<const std::byte> bytes, std::string_view origin,
                    const Limits& limits = {});

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(std::string_view name) const;
  std::span<const std::byte> data(const TensorInfo& t) const;
  const std::string& origin() const { return origin_; }

 private:
  std::span<const std::byte> data_section_;
  std::vector<TensorInfo> tensors_;  // sorted by begin offset
  std::map<std::string, std::string> metadata_;
  std::string origin_;
};

// A safetensors file opened through a memory map.
class File {
 public:
  explicit File(const std::filesystem::path& path, const Limits& limits = {});
  ~File();
  const View& view() const { return view_; }
  // Hands a consumed tensor's pages back to the OS (see MappedFile::release).
  void release(const TensorInfo& t) const;

 private:
  std::unique_ptr<MappedFile> map_;
  View view_;
};

// A tensor to write: raw little-endian bytes owned by the caller.
struct TensorRef {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
};

// Serialises tensors (in the given order) and metadata.
std::string serialize(const std::vector<TensorRef>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Writes atomically (temporary file, fsync, rename) without building the file in memory.
void write(const std::filesystem::path& path, const std::vector<TensorRef>& tensors,
           const std::map<std::string, std::string>& metadata = {});

}  // namespace safetensors
}  // namespace bistro
