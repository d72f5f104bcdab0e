#include "bistro/runtime/distributed.hpp"

#include <torch/torch.h>

#include <cstdlib>
#include <functional>
#include <map>

#include "bistro/core/error.hpp"

#if BISTRO_HAVE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace bistro::runtime {
namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, const std::string& v) {
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  check(end != v.c_str() && *end == '\0' && n >= 0 && n <= 1'000'000,
        "{}={}: not a non-negative integer", name, v);
  return static_cast<int>(n);
}

// c10::Error's message carries a stack trace after its first line.
std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

}  // namespace

std::optional<RankEnv> rank_env() {
  const auto rank = env("RANK"), world = env("WORLD_SIZE");
  if (!rank && !world) return std::nullopt;
  check(rank.has_value(), "WORLD_SIZE is set but RANK is not: launch every rank with both");
  check(world.has_value(), "RANK is set but WORLD_SIZE is not: launch every rank with both");
  RankEnv e;
  e.rank = env_int("RANK", *rank);
  e.world_size = env_int("WORLD_SIZE", *world);
  check(e.world_size >= 1, "WORLD_SIZE={}: at least 1", e.world_size);
  check(e.rank < e.world_size, "RANK={} with WORLD_SIZE={}: ranks are 0 to {}", e.rank,
        e.world_size, e.world_size - 1);
  e.local_rank = env("LOCAL_RANK") ? env_int("LOCAL_RANK", *env("LOCAL_RANK")) : e.rank;
  if (auto a = env("MASTER_ADDR")) e.master_addr = *a;
  if (auto p = env("MASTER_PORT")) e.master_port = env_int("MASTER_PORT", *p);
  check(e.master_port >= 1 && e.master_port <= 65535, "MASTER_PORT={}: a port is 1-65535",
        e.master_port);
  return e;
}

void require_rank_gpu(const RankEnv& e) {
  const auto n = static_cast<int>(torch::cuda::device_count());
  check(e.local_rank < n, "rank {} (local rank {}) has no GPU: this host has {}", e.rank,
        e.local_rank, n);
}

#if BISTRO_HAVE_C10D_GLOO
bool distributed_available() {
  return true;
}

struct Ranks::Group {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::string where;
};

Ranks::Ranks(const RankEnv& e, std::chrono::milliseconds timeout)
    : rank_(e.rank), size_(e.world_size) {
  if (size_ == 1) return;
  group_ = std::make_unique<Group>();
  group_->where = fmt::format("{}:{}", e.master_addr, e.master_port);
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(e.master_port);
    o.isServer = e.rank == 0;
    o.numWorkers = static_cast<size_t>(e.world_size);
    o.waitWorkers = true;
    o.timeout = timeout;
    group_->store = c10::make_intrusive<c10d::TCPStore>(e.master_addr, o);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // GLOO_SOCKET_IFNAME picks the interface, as with torchrun; loopback for a local master.
    if (auto ifname = env("GLOO_SOCKET_IFNAME"))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*ifname));
    else if (e.master_addr == "127.0.0.1" || e.master_addr == "localhost")
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    group_->pg =
        c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, e.rank, e.world_size, opts);
  } catch (const std::exception& ex) {
    fail("rank {} of {}: could not join the group at {} within {} s: {}", e.rank, e.world_size,
         group_->where, timeout.count() / 1000.0, first_line(ex.what()));
  }
}
#else
bool distributed_available() {
  return false;
}

struct Ranks::Group {};

Ranks::Ranks(const RankEnv& e, std::chrono::milliseconds) : rank_(e.rank), size_(e.world_size) {
  check(size_ == 1,
        "{} ranks asked for, but this build's libtorch has no c10d gloo (build against Debian's "
        "libtorch with libgloo-dev); it runs one rank per node",
        size_);
}
#endif

Ranks::Ranks() = default;
Ranks::~Ranks() = default;

#if BISTRO_HAVE_C10D_GLOO
namespace {
// A gloo collective takes one tensor (a list is one tensor per device): `tensors` flattened into
// one CPU buffer per dtype, `collective` run on each, the results copied back in place. One
// collective per step, not one per parameter. Returns the bytes moved.
double per_dtype_buffer(std::vector<at::Tensor>& tensors,
                        const std::function<void(std::vector<at::Tensor>&)>& collective) {
  torch::NoGradGuard no_grad;
  double bytes = 0;
  std::map<c10::ScalarType, std::vector<size_t>> by_type;
  for (size_t i = 0; i < tensors.size(); ++i) by_type[tensors[i].scalar_type()].push_back(i);
  for (auto& [type, idx] : by_type) {
    std::vector<at::Tensor> parts;
    for (size_t i : idx) parts.push_back(tensors[i].reshape({-1}).to(torch::kCPU));
    std::vector<at::Tensor> buf{torch::cat(parts)};
    collective(buf);
    bytes += static_cast<double>(buf[0].numel() * buf[0].element_size());
    int64_t at = 0;
    for (size_t i : idx) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(buf[0].narrow(0, at, n).view(tensors[i].sizes()));
      at += n;
    }
  }
  return bytes;
}
}  // namespace
#endif

void Ranks::sum(std::vector<at::Tensor>& tensors) {
  if (size_ == 1 || tensors.empty()) return;
#if BISTRO_HAVE_C10D_GLOO
  const auto t0 = std::chrono::steady_clock::now();
  bytes_ += per_dtype_buffer(tensors, [&](std::vector<at::Tensor>& buf) {
    try {
      group_->pg->allreduce(buf)->wait();
    } catch (const std::exception& ex) {
      fail("rank {} of {}: summing over the ranks ({}) failed (a rank died or timed out): {}",
           rank_, size_, group_->where, first_line(ex.what()));
    }
  });
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
#endif
}

void Ranks::broadcast(std::vector<at::Tensor>& tensors, int root) {
  if (size_ == 1 || tensors.empty()) return;
#if BISTRO_HAVE_C10D_GLOO
  per_dtype_buffer(tensors, [&](std::vector<at::Tensor>& buf) {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    try {
      group_->pg->broadcast(buf, o)->wait();
    } catch (const std::exception& ex) {
      fail("rank {} of {}: broadcast from rank {} ({}) failed (a rank died or timed out): {}",
           rank_, size_, root, group_->where, first_line(ex.what()));
    }
  });
#endif
}

void Ranks::require_same(const std::string& what, const std::string& value) {
  if (size_ == 1) return;
#if BISTRO_HAVE_C10D_GLOO
  const std::string key = fmt::format("same/{}/{}/", round_++, what);
  try {
    group_->store->set(key + std::to_string(rank_),
                       std::vector<uint8_t>(value.begin(), value.end()));
    const auto zero = group_->store->get(key + "0");
    for (int r = 1; r < size_; ++r) {
      const auto v = group_->store->get(key + std::to_string(r));
      check(v == zero, "rank {}'s {} do not match rank 0's: every rank must run with the same {}",
            r, what, what);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& ex) {
    fail("rank {} of {}: comparing {} over the ranks ({}) failed: {}", rank_, size_, what,
         group_->where, first_line(ex.what()));
  }
#endif
}

}  // namespace bistro::runtime
