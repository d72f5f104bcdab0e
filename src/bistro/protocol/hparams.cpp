#include "bistro/protocol/hparams.hpp"

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro {
namespace {
template <typename F>
void each_hparam(NeuronHparams& h, F&& f) {
  f("preset", h.preset);
  f("init_seed", h.init_seed);
  f("blocks_per_window", h.blocks_per_window);
  f("pages_per_window", h.pages_per_window);
  f("eval_pages", h.eval_pages);
  f("score_batches", h.score_batches);
  f("batch_rows", h.batch_rows);
  f("seq_len", h.seq_len);
  f("max_micro_batches", h.max_micro_batches);
  f("lr", h.lr);
  f("weight_decay", h.weight_decay);
  f("codec", h.codec);
  f("inner_steps", h.inner_steps);
  f("max_inner_steps", h.max_inner_steps);
  f("warmup_steps", h.warmup_steps);
  f("topk", h.topk);
  f("ef_beta", h.ef_beta);
  f("outer_lr", h.outer_lr);
  f("checkpoint_interval", h.checkpoint_interval);
  f("compression", h.compression);
  f("dct_k", h.dct_k);
  f("chunk_cap", h.chunk_cap);
  f("dct_lr", h.dct_lr);
  f("score_ema", h.score_ema);
  f("temperature", h.temperature);
  f("weights_interval", h.weights_interval);
  f("grace_blocks", h.grace_blocks);
  f("failover_blocks", h.failover_blocks);
  f("quorum", h.quorum);
  f("rating_ema", h.rating_ema);
  f("record_peers", h.record_peers);
  f("copy_entries", h.copy_entries);
  f("copy_indices", h.copy_indices);
  f("margin_floor", h.margin_floor);
  f("record_guard", h.record_guard);
  f("upload_tolerance_ms", h.upload_tolerance_ms);
  f("score_random_batches", h.score_random_batches);
  f("harm_alpha", h.harm_alpha);
  f("evidence_alpha", h.evidence_alpha);
  f("trust_alpha", h.trust_alpha);
  f("evidence_decay", h.evidence_decay);
  f("pay_prior", h.pay_prior);
  f("null_reads", h.null_reads);
  f("burn_uid", h.burn_uid);
  f("score_budget", h.score_budget);
  f("close_budget", h.close_budget);
  f("judge_budget", h.judge_budget);
}
}  // namespace

nlohmann::json to_json(const NeuronHparams& h) {
  nlohmann::json j;
  NeuronHparams c = h;
  each_hparam(c, [&](const char* name, auto& v) { j[name] = v; });
  return j;
}

NeuronHparams load_hparams(const std::filesystem::path& file) {
  NeuronHparams h;
  if (file.empty()) return h;
  auto j = nlohmann::json::parse(read_file(file), nullptr, false);
  check(j.is_object(), "{}: hparams must be a JSON object", file.string());
  for (auto& [key, value] : j.items()) {
    bool found = false;
    each_hparam(h, [&](const char* name, auto& v) {
      if (key != name) return;
      found = true;
      using T = std::decay_t<decltype(v)>;
      try {
        if constexpr (std::is_unsigned_v<T>) check(value.is_number_unsigned(), "not unsigned");
        v = value.get<T>();
      } catch (const std::exception&) {
        fail("{}: {} has the wrong type", file.string(), key);
      }
    });
    check(found, "{}: unknown hparam '{}'", file.string(), key);
  }
  check(h.blocks_per_window > 0, "{}: blocks_per_window must be positive", file.string());
  check(h.compression > 0 && h.batch_rows > 0 && h.seq_len > 1 && h.max_micro_batches > 0,
        "{}: compression, batch_rows, seq_len and max_micro_batches must be positive",
        file.string());
  check(h.score_ema >= 0 && h.score_ema < 1, "{}: score_ema must be in [0, 1)", file.string());
  check(h.codec == "sparseloco" || h.codec == "slice" || h.codec == "dct-topk",
        "{}: codec '{}' is not sparseloco, slice or dct-topk", file.string(), h.codec);
  check(h.inner_steps > 0 && h.warmup_steps >= 0 && h.topk > 0 && h.checkpoint_interval > 0,
        "{}: inner_steps, topk and checkpoint_interval must be positive", file.string());
  check(h.ef_beta >= 0 && h.ef_beta <= 1 && h.outer_lr > 0,
        "{}: ef_beta must be in [0, 1] and outer_lr positive", file.string());
  check(h.dct_k > 0 && h.chunk_cap > 0, "{}: dct_k and chunk_cap must be positive", file.string());
  check(h.rating_ema >= 0 && h.rating_ema < 1 && h.margin_floor >= 0 && h.margin_floor < 1 &&
            h.record_peers > 0 && h.record_guard >= 0,
        "{}: rating_ema and margin_floor must be in [0, 1), record_peers positive and "
        "record_guard not negative",
        file.string());
  check(h.close_budget >= 0 && h.close_budget <= 1 && h.judge_budget >= 0 && h.judge_budget <= 1,
        "{}: close_budget and judge_budget must be in [0, 1]", file.string());
  check(h.max_inner_steps >= h.inner_steps, "{}: max_inner_steps must be at least inner_steps",
        file.string());
  check(h.harm_alpha > 0 && h.harm_alpha < 0.5 && h.evidence_alpha > 0 && h.evidence_alpha < 0.5,
        "{}: harm_alpha and evidence_alpha must be in (0, 0.5)", file.string());
  check(h.trust_alpha >= h.evidence_alpha && h.trust_alpha < 0.5,
        "{}: trust_alpha must be in [evidence_alpha, 0.5)", file.string());
  check(h.evidence_decay >= 0 && h.evidence_decay < 1, "{}: evidence_decay must be in [0, 1)",
        file.string());
  check(h.pay_prior >= 0 && h.pay_prior <= 1e6, "{}: pay_prior must be in [0, 1e6]", file.string());
  check(h.null_reads <= 1000000, "{}: null_reads must be at most 1e6", file.string());
  check(h.burn_uid >= -1 && h.burn_uid <= 65535, "{}: burn_uid must be a uid (0-65535) or -1",
        file.string());
  check(h.score_batches > 0 && h.score_random_batches > 0,
        "{}: score_batches and score_random_batches must be positive", file.string());
  check(h.quorum > 0.5 && h.quorum <= 1,
        "{}: quorum must be in (0.5, 1] (two records of one window cannot both be final)",
        file.string());
  check(h.copy_entries > 0 && h.copy_entries <= 1 && h.copy_indices > 0 && h.copy_indices <= 1,
        "{}: copy_entries and copy_indices must be in (0, 1]", file.string());
  return h;
}

std::string hparams_hash(const NeuronHparams& h) {
  const std::string j = to_json(h).dump();
  return to_hex(sha256({reinterpret_cast<const uint8_t*>(j.data()), j.size()}));
}

}  // namespace bistro
