#include "bistro/ops/attack_sim.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "bistro/chain/weights.hpp"
#include "bistro/chain/yuma.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/miner/inner_loop.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/validator/gauntlet.hpp"
#include "bistro/validator/scoring.hpp"

namespace bistro::attack {

std::string reason_class(const std::string& r) {
  const auto p = r.find_first_of("(:");
  std::string s = r.substr(0, p == std::string::npos ? r.size() : p);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  if (s.rfind("copy of uid", 0) == 0) return "copy";
  return s;
}

SimResult simulate(const AttackOptions& o, const NeuronHparams& h, NeuronData& data,
                   const std::vector<std::optional<Behaviour>>& kinds) {
  const LlamaConfig config = preset(h.preset);
  const auto specs = parameter_specs(config);
  GauntletParams gp = gauntlet_params(h);
  NullSpread null_spread;  // the evidence test's null, pooled over windows
  Llama theta(config);
  theta->init_weights(h.init_seed);
  const auto params = parameter_tensors(theta);
  const auto eval = data.held_out(h);

  const size_t n = kinds.size();
  std::vector<SimMiner> miners(n);
  std::vector<uint16_t> honest_uids;
  for (size_t uid = 1; uid < n; ++uid)
    if (kinds[uid] == Behaviour::Honest) honest_uids.push_back(static_cast<uint16_t>(uid));
  int sybil_leader = -1, sybil_members = 0;
  for (size_t uid = 1; uid < n; ++uid) {
    if (!kinds[uid]) continue;
    SimMiner& m = miners[uid];
    m.uid = static_cast<uint16_t>(uid);
    m.kind = *kinds[uid];
    std::string seed = fmt::format("bistro/attack/{}/{}", o.seed, uid);
    m.signer = ed25519_signer(sha256({reinterpret_cast<const uint8_t*>(seed.data()), seed.size()}));
    m.hotkey = ss58_encode(m.signer->public_key());
    if (m.kind == Behaviour::Copycat || m.kind == Behaviour::LateCopycat ||
        m.kind == Behaviour::Replay)
      m.copy_of = honest_uids.empty() ? -1 : honest_uids[rng::at(o.seed, uid) % honest_uids.size()];
    if (m.kind == Behaviour::Sybil) {
      // An operator's extra uids: its main uid is an honest miner, and two sybils send that
      // miner's update, stamped the same second.
      if (sybil_leader < 0 || sybil_members == 2)
        sybil_leader =
            honest_uids.empty() ? -1 : honest_uids[rng::at(o.seed ^ 5, uid) % honest_uids.size()],
        sybil_members = 0;
      m.copy_of = sybil_leader, ++sybil_members;
    }
    const bool trains = behaviour_trains(m.kind) && m.copy_of < 0;
    if (trains) {
      Llama work(config);
      work->init_weights(h.init_seed);
      m.trainer = std::make_unique<Trainer>(std::move(work), inner_train_options(h));
      m.ef = std::make_unique<ErrorFeedback>(
          theta->ordered_parameters(),
          ErrorFeedbackOptions{.beta = h.ef_beta, .k = h.topk, .chunk_cap = h.chunk_cap});
    }
  }

  SimResult res;
  res.kind.assign(n, Behaviour::Honest);
  res.present.assign(n, false);
  res.copy_of.assign(n, -1);
  res.incentive.assign(n, 0.0);
  for (size_t uid = 1; uid < n; ++uid)
    if (kinds[uid])
      res.kind[uid] = *kinds[uid], res.present[uid] = true, res.copy_of[uid] = miners[uid].copy_of;
  res.first_loss = mean_loss(theta, eval);

  std::map<std::string, Rating> ratings;
  SketchHistory history;
  chain::EpochState chain_state;
  chain_state.stake.assign(n, 0);
  chain_state.stake[0] = 1'000'000'000'000;
  chain_state.last_update.assign(n, 0);
  chain_state.block_at_registration.assign(n, 0);
  chain_state.validator_permit.assign(n, false);
  chain_state.validator_permit[0] = true;
  chain_state.weights.assign(n, {});
  chain_state.bonds.assign(n, {});
  double overlap_sum = 0;
  int overlap_count = 0;
  auto zero_update = [&] {
    return noise_update(specs, h.topk, h.chunk_cap, std::vector<float>(specs.size(), 0.0f), 0);
  };

  std::map<uint16_t, Update> prev_sent;  // what a replay re-sends
  res.honest_all_measured = o.windows;
  for (uint64_t w = 0; w < o.windows; ++w) {
    // 1. The miners' pages (one reader at a time), then their inner loops in parallel.
    std::vector<SimMiner*> trainers;
    for (auto& m : miners)
      if (m.trainer) {
        uint64_t key = local_pages_key(w, m.uid);
        if (m.kind == Behaviour::DataCheat) key = rng::derive(key, "data-cheat");
        m.batches = data.batches(pages(key, h.pages_per_window, data.configs), h.max_micro_batches);
        trainers.push_back(&m);
      }
    {
      std::atomic<size_t> next{0};
      auto work = [&] {
        for (size_t i; (i = next++) < trainers.size();) {
          SimMiner& m = *trainers[i];
          const auto local = parameter_tensors(m.trainer->model());
          {
            torch::NoGradGuard no_grad;
            for (size_t p = 0; p < local.size(); ++p) local[p].copy_(params[p]);
          }
          inner_loop(*m.trainer, m.batches, h.inner_steps);
          m.trained = m.ef->encode(pseudo_gradient(params, local));
        }
      };
      std::vector<std::thread> pool;
      for (int t = 1; t < o.threads; ++t) pool.emplace_back(work);
      work();
      for (auto& t : pool) t.join();
    }

    // 2. What each uid sends, when (simulated bucket clock), through the real wire format.
    const int64_t opened = static_cast<int64_t>(w) * 100'000 + 1, closed = opened + 90'000;
    std::map<uint16_t, Update> sent, decoded;
    std::map<uint16_t, int64_t> when;
    std::map<uint16_t, std::string> status;
    // Two passes: the miners that feed on others' updates (copiers, noise) go second.
    auto feeds = [&](const SimMiner& m) {
      return m.copy_of >= 0 || m.kind == Behaviour::Copycat || m.kind == Behaviour::LateCopycat ||
             m.kind == Behaviour::Noise || m.kind == Behaviour::NegativeExploit;
    };
    for (int pass = 0; pass < 2; ++pass)
      for (auto& m : miners) {
        if (!m.signer || feeds(m) != (pass == 1)) continue;
        int64_t t = opened + 50'000 + m.uid * 10;
        Update u;
        switch (m.kind) {
          case Behaviour::Honest:
          case Behaviour::DataCheat:
            u = m.trained;
            break;
          case Behaviour::Late:
            u = m.trained, t = closed + 10'000;
            break;
          case Behaviour::Poison:
          case Behaviour::PoisonMax:
            u = m.trained, poison_as(m.kind, u);
            break;
          case Behaviour::Lazy:
            u = zero_update();
            break;
          case Behaviour::Replay: {  // the previous window's update of a peer, re-signed
            auto src = prev_sent.find(static_cast<uint16_t>(m.copy_of));
            if (src == prev_sent.end()) continue;
            u = src->second;
            break;
          }
          case Behaviour::Sybil:
            if (m.copy_of < 0) {
              u = m.trained;
              break;
            }
            [[fallthrough]];
          case Behaviour::Copycat:
          case Behaviour::LateCopycat: {
            auto src = sent.find(static_cast<uint16_t>(m.copy_of));
            if (m.copy_of < 0 || src == sent.end()) continue;  // nothing to copy: missing
            u = src->second;
            t = m.kind == Behaviour::LateCopycat ? closed - 1'000 : when[src->first] + 500;
            if (m.kind == Behaviour::Sybil) t = when[src->first];
            break;
          }
          case Behaviour::NegativeExploit:
            if (w < kNegativeExploitZeros) {
              u = zero_update();
              break;
            }
            [[fallthrough]];
          case Behaviour::Noise: {
            const uint16_t look =
                honest_uids.empty() ? 0 : honest_uids[rng::at(w, m.uid) % honest_uids.size()];
            const auto rms =
                sent.count(look) ? update_rms(sent[look]) : std::vector<float>(specs.size(), 1e-3f);
            u = noise_update(specs, h.topk, h.chunk_cap, rms, rng::derive(w, m.uid));
            break;
          }
          case Behaviour::Garbage:
            break;
        }
        std::string bytes;
        if (m.kind == Behaviour::Garbage) {
          bytes.assign(4096, '\0');
          for (size_t i = 0; i < bytes.size(); ++i)
            bytes[i] = static_cast<char>(rng::at(w, i) & 0xff);
        } else {
          sent[m.uid] = u;
          u.window = w;
          u.uid = m.uid;
          u.config_hash = config_hash(config);
          bytes = encode_update(std::move(u), *m.signer);
        }
        when[m.uid] = t;
        try {
          decoded[m.uid] = decode_update(bytes, update_expectation(h, config, w, m.uid, m.hotkey),
                                         fmt::format("uid {}", m.uid));
        } catch (const UpdateError& e) {
          status[m.uid] = e.what();
        }
      }

    prev_sent = sent;
    // 3. The validator: checks, scores, judgement, record, outer step, guard.
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Received> received;
    for (auto& [uid, u] : decoded) received.push_back({uid, &u, when[uid]});
    std::map<uint16_t, uint16_t> duplicates;
    for (auto& [uid, st] : check_uploads(received, opened, closed, history, w, gp, &duplicates))
      status[uid] = st;
    std::vector<Observation> obs;
    std::vector<ScoreInput> inputs;
    // The scoring budget: a rotating sample is measured; the rest enter on their trust.
    std::vector<std::pair<uint16_t, std::string>> expected;
    for (auto& m : miners)
      if (m.signer) expected.emplace_back(m.uid, m.hotkey);
    for (auto& m : miners) {
      if (!m.signer) continue;
      auto st = status.find(m.uid);
      obs.push_back({m.uid, m.hotkey, st == status.end() ? "missing" : st->second});
      obs.back().duplicate = duplicates.count(m.uid) > 0;
      if (obs.back().duplicate) obs.back().twin = duplicates.at(m.uid);
    }
    const auto sample = with_tie_groups(scoring_sample(expected, ratings, o.score_budget, w), obs);
    for (auto& ob : obs) {
      const SimMiner& m = miners[ob.uid];
      ob.measured = std::binary_search(sample.begin(), sample.end(), m.uid);
      if (ob.status == "ok" && ob.measured && m.kind == Behaviour::Honest)
        res.honest_first_measured.emplace(m.uid, w);
      if (ob.status == "ok" && ob.measured)
        inputs.push_back({m.uid, &decoded.at(m.uid),
                          pick_batches(data.window_batches(w, m.uid, h), h.score_batches,
                                       rng::derive(o.seed ^ w, m.uid))});
    }
    // The random sample: as many sequences as the neurons read (score_random_batches x 8 rows).
    const auto random =
        data.sample(rng::derive(w, "bistro/attack/random-pages") ^ o.seed,
                    std::max<int64_t>(1, h.score_random_batches * 8 / h.batch_rows));
    const size_t scored = inputs.size();
    WindowScorer scorer(theta, config, random, h.outer_lr);
    scorer.add_all(std::move(inputs), o.threads);
    std::set<uint16_t> not_references;
    for (auto& [uid, twin] : duplicates) not_references.insert(uid);
    scorer.observe(obs, not_references, o.threads);
    null_spread.add(obs, kNullDecay);
    gp.null_spread = null_spread.factor(static_cast<double>(h.null_reads));
    res.null_spread = gp.null_spread;
    const auto verdicts = judge_window(obs, ratings, gp, w);
    const auto best_first = admitted_best_first(verdicts, obs, decoded);
    const auto kept = guarded_outer_step(theta, best_first, h.outer_lr, random,
                                         scorer.base_sequences(), h.record_guard, h.harm_alpha);
    if (kept.size() < best_first.size()) ++res.rejections["windows the guard cut"];
    // Admitted and left out, per kind, of the updates that were sent (missing ones aside).
    for (size_t i = 0; i < obs.size(); ++i) {
      const auto& ob = obs[i];
      if (ob.status == "missing") continue;
      const std::string k = behaviour_name(miners[ob.uid].kind);
      const bool in = std::find(kept.begin(), kept.end(), ob.uid) != kept.end();
      ++(in ? res.admitted : res.left_out)[k];
      if (in && verdicts[i].unpaid) ++res.admitted_unpaid[k];
    }
    res.validator_seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (const auto& ob : obs) {
      if (ob.status != "ok" || !ob.measured || ob.own_margin.n < 2) continue;
      res.margin_t[behaviour_name(miners[ob.uid].kind)].emplace_back(ob.own_margin.t(),
                                                                     ob.own_margin.n);
      if (ob.placebo.n >= 2) res.margin_t["placebo"].emplace_back(ob.placebo.t(), ob.placebo.n);
    }
    for (const auto& v : verdicts)
      if (!v.admitted && v.reason != "missing") ++res.rejections[reason_class(v.reason)];
    if (std::getenv("BISTRO_ATTACK_TRACE"))  // one JSON line per uid and window
      for (size_t i = 0; i < obs.size(); ++i) {
        const auto& ob = obs[i];
        const auto found = ratings.find(ob.hotkey);  // tracing adds no rating
        const Rating rt = found == ratings.end() ? Rating{} : found->second;
        fmt::print(
            "trace {{\"w\":{},\"uid\":{},\"kind\":\"{}\",\"ok\":{},\"measured\":{},"
            "\"passed\":{},\"admitted\":{},\"trusted\":{},\"margin\":{},\"t\":{},\"n\":{},"
            "\"d_random\":{},\"score\":{},\"rating\":{},\"placebo_t\":{}}}\n",
            w, ob.uid, behaviour_name(miners[ob.uid].kind), ob.status == "ok", ob.measured,
            verdicts[i].passed, std::find(kept.begin(), kept.end(), ob.uid) != kept.end(),
            rt.trusted, std::isfinite(ob.margin()) ? ob.margin() : 0.0,
            ob.own_margin.n ? ob.own_margin.t() : 0.0, ob.own_margin.n,
            std::isfinite(ob.d_random) ? ob.d_random : 0.0, verdicts[i].score, rt.rating,
            ob.placebo.n ? ob.placebo.t() : 0.0);
      }

    // Honest miners' natural index overlap (what the copy threshold must stay above).
    for (size_t a = 0; a + 1 < honest_uids.size() && a < 40; ++a) {
      auto x = decoded.find(honest_uids[a]), y = decoded.find(honest_uids[a + 1]);
      if (x == decoded.end() || y == decoded.end()) continue;
      const auto ov = update_overlap(x->second, y->second);
      res.honest_index_overlap_max = std::max(res.honest_index_overlap_max, ov.indices);
      overlap_sum += ov.indices, ++overlap_count;
    }

    // 4. Weights from ratings; one Yuma epoch per window.
    const auto weights = rating_weights(obs, ratings, gp);
    std::vector<double> wv(n, 0.0);
    for (auto& [uid, x] : weights) wv[uid] = x;
    const auto row = chain::weights_from_scores(wv);
    chain_state.weights[0].clear();
    for (size_t i = 0; i < row.uids.size(); ++i)
      chain_state.weights[0].emplace_back(row.uids[i], row.values[i]);
    for (auto& lu : chain_state.last_update) lu = w + 1;
    chain::EpochParams ep;
    ep.block = w + 2;
    ep.tempo = 1;
    ep.owner_uid = 0;  // the validator is the subnet's owner: what it holds back is weighted to it
    const auto r = chain::run_epoch(ep, chain_state);
    chain_state.validator_permit = r.validator_permit;
    for (size_t i = 0; i < n; ++i)
      if (r.bonds[i]) chain_state.bonds[i] = *r.bonds[i];
    res.incentive_by_window.emplace_back(n, 0.0);
    for (size_t i = 1; i < n; ++i) res.incentive_by_window.back()[i] = r.incentive[i] / 65535.0;
    res.held += r.incentive[0] / 65535.0;
    if (res.honest_first_measured.size() == honest_uids.size() &&
        res.honest_all_measured == o.windows)
      res.honest_all_measured = w;
    const double after = mean_loss(theta, eval);  // the held-out loss (not part of the timing)
    fmt::print("window {:>3}: master {:.4f}; {} admitted of {} scored; validator {:.1f} s\n", w,
               after, kept.size(), scored, res.validator_seconds.back());
    std::fflush(stdout);
    res.final_loss = after;
    res.losses.push_back(after);
  }
  for (const auto& by_uid : res.incentive_by_window)
    for (size_t i = 0; i < n; ++i) res.incentive[i] += by_uid[i] / static_cast<double>(o.windows);
  res.honest_index_overlap_mean = overlap_count ? overlap_sum / overlap_count : 0;
  return res;
}

}  // namespace bistro::attack
