#include "bistro/protocol/catch_up.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "bistro/core/files.hpp"
#include "bistro/core/window_cache.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/model/hf_tokenizer.hpp"
#include "bistro/protocol/arrivals.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/protocol/window.hpp"
#include "bistro/storage/s3_bucket.hpp"
#include "bistro/storage/sigv4.hpp"
#include "bistro/train/checkpoint.hpp"

namespace bistro {

std::vector<MasterSource> validator_order(chain::Chain& chain, uint16_t netuid) {
  const chain::Metagraph m = chain.metagraph(netuid);
  const auto commits = chain.commitments(netuid);
  std::vector<const chain::Neuron*> v;
  for (const auto& n : m.neurons) {
    auto it = commits.find(n.hotkey);
    if (it != commits.end() && it->second.rfind("master:", 0) == 0) v.push_back(&n);
  }
  std::stable_sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->stake > b->stake; });
  std::vector<MasterSource> out;
  for (const auto* n : v)
    out.push_back({commits.at(n->hotkey).substr(7), n->hotkey, to_hex(ss58_decode(n->hotkey)),
                   static_cast<double>(n->stake) / 1e9, n->validator_permit});
  return out;
}

std::optional<MasterSource> find_master(chain::Chain& chain, uint16_t netuid) {
  auto order = validator_order(chain, netuid);
  if (order.empty()) return std::nullopt;
  return std::move(order.front());
}

uint64_t failover_block(uint64_t u, const NeuronHparams& h) {
  return window_deadline_block(u, h) + h.failover_blocks;
}

uint64_t record_wait_block(uint64_t u, const NeuronHparams& h, uint64_t candidates) {
  const uint64_t deadline = window_deadline_block(u + 1, h);
  if (candidates == 0) return deadline;
  return std::max(deadline, failover_block(u, h) + candidates * h.failover_blocks + 1);
}

ModelSync::ModelSync(chain::Chain& chain, uint16_t netuid, const NeuronHparams& h,
                     const LlamaConfig& config, std::filesystem::path scratch, Log log)
    : chain_(chain),
      netuid_(netuid),
      h_(h),
      config_(config),
      scratch_(std::move(scratch)),
      log_(std::move(log)) {
  std::filesystem::create_directories(scratch_);
}

const std::optional<MasterSource>& ModelSync::master() {
  if (!master_) {
    master_ = find_master(chain_, netuid_);
    if (master_) bucket_ = open_bucket(master_->bucket_url);
  }
  return master_;
}

void ModelSync::set_master(const MasterSource& source) {
  master_ = source;
  bucket_ = open_bucket(source.bucket_url);
}

void ModelSync::pass_to(uint64_t u, const MasterSource& source) {
  // A record of a window before the current lead's first (one that took the lead back at
  // choose_lead, reading an older final record) says nothing about who leads now.
  if (u < master_from_) return;
  if (master_ && master_->hotkey_ss58 != source.hotkey_ss58) {
    note_passed_over(passed_, master_->hotkey_ss58, u);
    const auto& p = passed_.at(master_->hotkey_ss58);
    log_(0, fmt::format("window {}: the record of validator {} takes the turn of the lead {}: {} "
                        "leads now, and {} rests {} windows before it may lead again",
                        u, source.hotkey_ss58, master_->hotkey_ss58, source.hotkey_ss58,
                        master_->hotkey_ss58, lead_rest_windows(p.times)));
    master_from_ = u;
  }
  set_master(source);
}

void ModelSync::pass_to(uint64_t u, const std::string& publisher_ss58) {
  if (master_ && master_->hotkey_ss58 == publisher_ss58) return;
  for (const auto& c : validator_order(chain_, netuid_))
    if (c.hotkey_ss58 == publisher_ss58) return pass_to(u, c);
}

const ModelSync::FinalView& ModelSync::final_view(uint64_t u) {
  auto it = finals_.find(u);
  if (it == finals_.end() || it->second.publisher.empty()) {
    FinalView v;
    for (const auto& r : records_of(u))
      if (r.finality.final) {
        v.publisher = r.publisher_ss58;
        v.attesters.insert(r.finality.attesters.begin(), r.finality.attesters.end());
        v.censored = r.finality.censored;
      }
    it = finals_.insert_or_assign(u, std::move(v)).first;
    trim_oldest(finals_, 4, u);
  }
  return it->second;
}

bool ModelSync::choose_lead(uint64_t u) {
  if (!master() || u < 3) return false;
  // The validators as window u sees them (views: cached per window, records_of reads the same;
  // a new subnet's validators all count until one holds a permit).
  const auto& order = views(u);
  if (order.size() < 2) return false;
  std::vector<LeadCandidate> candidates;
  for (const auto& v : order) candidates.push_back({v.hotkey_ss58, v.key, v.permit});
  auto source = [&](size_t i) {
    return MasterSource{order[i].bucket_url, order[i].hotkey_ss58, order[i].key, order[i].stake,
                        order[i].permit};
  };
  const FinalView two = final_view(u - 2);  // copies: a later call may trim the cache
  const FinalView three = final_view(u - 3);
  const std::string lead = master_->hotkey_ss58;
  if (const auto next = censorship_pass(candidates, lead, two.publisher, two.censored,
                                        three.publisher, three.censored)) {
    note_passed_over(passed_, lead, u, true);
    log_(0, fmt::format("window {}: the final records of windows {} and {} left out uid {} and {} "
                        "that validators holding more than 1 - quorum of the active stake admitted "
                        "and measured as helpful: the lead {} is passed over and rests {} windows; "
                        "{} leads",
                        u, u - 3, u - 2, fmt::join(three.censored, ", "),
                        fmt::join(two.censored, ", "), lead,
                        lead_rest_windows(passed_.at(lead).times), order[*next].hotkey_ss58));
    set_master(source(*next));
    master_from_ = u;
    return true;
  }
  // Whether a validator above the lead was up when passed over at v (up_when_passed) is decided
  // once, at v+3, from the final records of v and v+1: u-3 and u-2 then, read already (later,
  // for a node that did not choose at v+3, read once).
  for (const auto& c : candidates) {
    if (c.hotkey == lead) break;
    const auto p = passed_.find(c.hotkey);
    if (p == passed_.end() || p->second.up_decided || u < p->second.window + 3) continue;
    const uint64_t v = p->second.window;
    const bool up = u == v + 3 ? three.attesters.count(c.key) && two.attesters.count(c.key)
                               : final_view(v).attesters.count(c.key) &&
                                     final_view(v + 1).attesters.count(c.key);
    p->second = decide_up(p->second, up);
    if (up)
      log_(0, fmt::format("window {}: validator {} was up when passed over at window {} (it "
                          "attested the final records of {} and {}): it rests {} windows",
                          u, c.hotkey, v, v, v + 1, lead_rest_windows(p->second.times)));
  }
  const auto back = returning_lead(candidates, lead, u, two.attesters, three.attesters, passed_);
  if (!back) return false;
  log_(0, fmt::format("window {}: validator {} leads again: above {} in stake, it attested the "
                      "final records of windows {} and {} and has rested",
                      u, order[*back].hotkey_ss58, lead, u - 3, u - 2));
  set_master(source(*back));
  master_from_ = u;
  return true;
}

std::optional<WindowRecord> ModelSync::fetch_from(const MasterSource& source, Bucket& bucket,
                                                  uint64_t u) {
  std::string bytes;
  try {
    ++record_requests_;
    bytes = bucket.get(record_key(u));
  } catch (const NotFound&) {
    return std::nullopt;
  }
  try {
    auto r = parse_record(bytes, {u, config_hash(config_), hparams_hash(h_), source.validator_hex});
    remember_sha(u, sha256_hex(bytes));
    return r;
  } catch (const RecordError& e) {
    throw SyncError(fmt::format("{} (from validator {})", e.what(), source.hotkey_ss58));
  }
}

void ModelSync::remember_sha(uint64_t u, const std::string& sha) {
  record_sha_[u] = sha;
  trim_oldest(record_sha_, 16, u);
}

std::string ModelSync::record_sha256(uint64_t u) const {
  const auto it = record_sha_.find(u);
  return it == record_sha_.end() ? std::string() : it->second;
}

std::optional<WindowRecord> ModelSync::fetch_published(uint64_t u) {
  if (!master()) return std::nullopt;
  if (auto r = fetch_from(*master_, *bucket_, u)) return r;
  // Failover: past the lead's deadline, record(u) may come from the next validators in the
  // order; the first found is the one (docs/protocol.md), and its publisher is read first from
  // then on.
  if (chain_.block() <= failover_block(u, h_)) return std::nullopt;
  for (const auto& c : validator_order(chain_, netuid_)) {
    if (c.hotkey_ss58 == master_->hotkey_ss58) continue;
    auto b = open_bucket(c.bucket_url);
    if (auto r = fetch_from(c, *b, u)) {
      log_(0, fmt::format("window {}: record from validator {} (failover: {} published none by "
                          "block {})",
                          u, c.hotkey_ss58, master_->hotkey_ss58, failover_block(u, h_)));
      pass_to(u, c);
      return r;
    }
  }
  return std::nullopt;
}

std::optional<WindowRecord> ModelSync::fetch_lead_record(uint64_t u) {
  if (!master()) return std::nullopt;
  return fetch_from(*master_, *bucket_, u);
}

const std::vector<ValidatorView>& ModelSync::views(uint64_t u) {
  auto it = views_.find(u);
  if (it == views_.end()) {
    std::vector<ValidatorView> v;
    bool any_permit = false;
    for (const auto& m : validator_order(chain_, netuid_)) {
      v.push_back({m.hotkey_ss58, m.validator_hex, m.stake, m.permit, m.bucket_url});
      any_permit = any_permit || m.permit;
    }
    // A new subnet's validators hold no permit until its first epoch: until one does, every
    // validator with a master: commitment counts.
    if (!any_permit)
      for (auto& x : v) x.permit = true;
    it = views_.emplace(u, std::move(v)).first;
    trim_oldest(views_, 4, u);
  }
  return it->second;
}

std::vector<RecordFinality> ModelSync::records_of(uint64_t u) {
  const auto& v = views(u);
  const uint64_t now = window_of(chain_.block(), h_);
  const uint64_t read = std::max(u, now > 0 ? now - 1 : 0);
  auto a = active_.find(read);
  if (a == active_.end()) {
    a = active_.emplace(read, active_validators(v, read)).first;
    trim_oldest(active_, 4, read);
  }
  auto out = read_window_finality(
      v, u, config_hash(config_), hparams_hash(h_), h_.quorum,
      [&](const std::string& m) {
        if (logged_.insert(m).second) log_(1, m);  // once, not at every poll
        if (logged_.size() > 256) logged_.clear();
      },
      &a->second);
  // A record this node saw refused stays refused for it: its objectors' later statements name
  // the record that replaced it (one statement per validator and window), which would otherwise
  // drop the objections from the count.
  for (auto& r : out) {
    if (r.finality.refused) refused_.insert(r.sha256);
    if (refused_.count(r.sha256)) r.finality.refused = true, r.finality.final = false;
  }
  return out;
}

std::optional<WindowRecord> ModelSync::fetch_record(uint64_t u) {
  if (!master()) return std::nullopt;
  ++record_requests_;
  for (auto& r : records_of(u)) {
    if (!r.finality.final) continue;
    remember_sha(u, r.sha256);
    pass_to(u, r.publisher_ss58);
    return std::move(r.record);
  }
  return std::nullopt;
}

std::optional<WindowRecord> ModelSync::wait_record(uint64_t u, uint64_t give_up_block) {
  while (true) {
    if (auto r = fetch_record(u)) return r;
    if (chain_.block() >= give_up_block) return std::nullopt;
    // An eightieth of a window between looks (arrivals.hpp): the wait costs at most that much,
    // and a node sends about 80 requests a window at most, whatever the block time.
    std::this_thread::sleep_for(std::chrono::duration<double>(default_poll_interval(
        chain_.seconds_per_block() * static_cast<double>(h_.blocks_per_window))));
  }
}

std::string ModelSync::fetch_update(const WindowRecord& r, const RecordEntry& e,
                                    const std::map<std::string, std::string>& commits) {
  std::string why;
  try {  // the miner's own bucket first: the master's mirror is the fallback, not the default
    auto c = commits.find(e.hotkey);
    if (c != commits.end() && c->second.rfind("master:", 0) != 0) {
      std::string bytes = open_bucket(c->second)->get(update_key(r.window, e.uid, e.hotkey));
      if (sha256_hex(bytes) == e.sha256) return bytes;
      why = "its bucket holds other bytes than the record names";
    } else {
      why = "no bucket committed";
    }
  } catch (const std::exception& ex) {
    why = ex.what();
  }
  log_(2, fmt::format("window {}: uid {} update from its bucket failed ({}); using the mirror",
                      r.window, e.uid, why));
  try {
    std::string bytes = bucket_->get(mirror_key(r.window, e.uid));
    if (sha256_hex(bytes) == e.sha256) return bytes;
    why = "the mirror holds other bytes than the record names";
  } catch (const std::exception& ex) {
    why = fmt::format("the mirror failed too: {}", ex.what());
  }
  throw SyncError(
      fmt::format("window {}: uid {}: cannot fetch the accepted update: {}", r.window, e.uid, why));
}

void ModelSync::apply_record(
    const WindowRecord& r, const std::vector<torch::Tensor>& theta,
    const std::map<uint16_t, std::pair<std::string, const Update*>>& known) {
  const std::string base = params_hash(theta);
  if (base != r.base_hash)
    throw SyncError(
        fmt::format("window {}: this node's parameters hash {}, the record starts from {}",
                    r.window, base, r.base_hash));
  std::vector<Update> fetched;
  fetched.reserve(r.accepted.size());
  std::vector<PeerUpdate> peers;
  std::optional<std::map<std::string, std::string>> commits;  // read once, when first needed
  for (const auto& e : r.accepted) {
    auto k = known.find(e.uid);
    if (k != known.end() && k->second.first == e.sha256) {
      peers.push_back({e.uid, k->second.second});
      continue;
    }
    if (!commits) commits = chain_.commitments(netuid_);
    const std::string bytes = fetch_update(r, e, *commits);
    try {
      fetched.push_back(decode_update(bytes,
                                      update_expectation(h_, config_, r.window, e.uid, e.hotkey),
                                      fmt::format("uid {} window {}", e.uid, r.window)));
    } catch (const std::exception& ex) {
      throw SyncError(fmt::format("window {}: uid {}: the accepted update does not verify: {}",
                                  r.window, e.uid, ex.what()));
    }
    peers.push_back({e.uid, &fetched.back()});
  }
  outer_step(theta, peers, h_.outer_lr);
  const std::string after = params_hash(theta);
  if (after != r.params_hash)
    throw SyncError(fmt::format(
        "window {}: after the outer step this node's parameters hash {}, the master's {}", r.window,
        after, r.params_hash));
}

std::optional<CheckpointPointer> read_checkpoint_pointer(Bucket& bucket, const std::string& url) {
  std::string latest;
  try {
    latest = bucket.get(kLatestCheckpointKey);
  } catch (const NotFound&) {
    return std::nullopt;
  }
  auto j = nlohmann::json::parse(latest, nullptr, false);
  if (!j.is_object() || !j.contains("window") || !j["window"].is_number_unsigned() ||
      !j.contains("params_hash") || !j["params_hash"].is_string())
    throw SyncError(fmt::format("{}/{}: not a checkpoint pointer", url, kLatestCheckpointKey));
  return CheckpointPointer{j["window"].get<uint64_t>(), j["params_hash"].get<std::string>()};
}

void download_checkpoint(Bucket& bucket, const std::string& url, uint64_t window,
                         const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  for (const char* f : kPublishedCheckpointFiles) {
    try {
      bucket.get_file(checkpoint_key(window, f), dir / f);
    } catch (const NotFound&) {
      fail("{}: the checkpoint of window {} has no {}", url, window, f);
    }
  }
}

uint64_t ModelSync::load_checkpoint(Llama& model, const CheckpointPointer& c) {
  const auto file = scratch_ / "checkpoint.safetensors";
  bucket_->get_file(checkpoint_key(c.window, "model.safetensors"), file);
  load_weights(model, file);
  const std::string got = params_hash(parameter_tensors(model));
  if (got != c.params_hash)
    throw SyncError(fmt::format("checkpoint of window {} hashes {}, its pointer says {}", c.window,
                                got, c.params_hash));
  return c.window;
}

std::optional<uint64_t> ModelSync::load_latest_checkpoint(Llama& model) {
  const auto c = master() ? read_checkpoint_pointer(*bucket_, master_->bucket_url) : std::nullopt;
  if (!c) return std::nullopt;
  return load_checkpoint(model, *c);
}

std::optional<uint64_t> ModelSync::catch_up(Llama& model, std::optional<uint64_t> start,
                                            uint64_t target, uint64_t give_up_block) {
  const auto theta = parameter_tensors(model);
  bool known = start.has_value();  // (not an optional: GCC 12 misreads one through the loop)
  uint64_t at = start.value_or(0);
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      // A checkpoint past where we are (or where we are unknown) saves replaying records.
      if (!known || at < target) {
        std::optional<CheckpointPointer> latest;
        while (true) {
          try {
            if (master()) latest = read_checkpoint_pointer(*bucket_, master_->bucket_url);
          } catch (const SyncError&) {
            if (!known) throw;  // a bad pointer matters only when there is nothing else to go on
          }
          // A node with nothing to go on waits for the master's first checkpoint (a miner that
          // started first), as long as the window allows.
          if (latest || known || chain_.block() >= give_up_block) break;
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (latest && (!known || latest->window > at) && latest->window <= target) {
          at = load_checkpoint(model, *latest);
          known = true;
          log_(1, fmt::format("loaded the master's checkpoint of window {}", at));
        }
      }
      if (!known) return std::nullopt;
      while (at < target) {
        auto r = wait_record(at, give_up_block);
        if (!r) return at;
        apply_record(*r, theta);
        last_applied_ = std::move(r);
        ++at;
      }
      return at;
    } catch (const SyncError& e) {
      log_(0, fmt::format("{}; resynchronising from the master's checkpoint", e.what()));
      known = false;
    }
  }
  return std::nullopt;
}

void publish_checkpoint(Bucket& bucket, const Llama& model, uint64_t window,
                        const std::filesystem::path& scratch) {
  const auto dir = scratch / "publish";
  save_checkpoint(dir, model, default_tokenizer_path());
  // The tokenizer travels with the model: a user who downloads the master gets both.
  for (const char* f : kPublishedCheckpointFiles)
    bucket.put_file(checkpoint_key(window, f), dir / f);
  Llama& m = const_cast<Llama&>(model);
  bucket.put(kLatestCheckpointKey,
             nlohmann::json{{"window", window}, {"params_hash", params_hash(parameter_tensors(m))}}
                 .dump());
}

}  // namespace bistro
