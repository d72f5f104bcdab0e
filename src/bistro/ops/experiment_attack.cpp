#include "bistro/ops/experiment_attack.hpp"

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
#include "bistro/cheats/cheats.hpp"
#include "bistro/compress/error_feedback.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/miner/inner_loop.hpp"
#include "bistro/ops/attack_sim.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/validator/gauntlet.hpp"
#include "bistro/validator/scoring.hpp"

namespace bistro {
namespace {

using attack::reason_class;
using attack::SimResult;
using attack::simulate;

// The evidence test read one window alone, on real pages: how often it passes updates with no
// own-page work (one reference against the other; data cheats), against the stated
// evidence_alpha, and honest ones; with the spread of their t (Student's t with the same degrees
// of freedom has sd student_t_sd(dof)).
void report_evidence_test(const SimResult& att, double alpha, nlohmann::json& summary) {
  std::vector<std::string> parts;
  for (const char* k : {"placebo", "data-cheat", "sybil", "honest"}) {
    const auto it = att.margin_t.find(k);
    if (it == att.margin_t.end() || it->second.size() < 2) continue;
    double sum = 0, sq = 0, dof = 0;
    size_t passed = 0;
    for (auto [t, n] : it->second) {
      passed += std::isfinite(t) && t > t_critical(alpha, n - 1);
      const double c = std::clamp(t, -50.0, 50.0);
      sum += c, sq += c * c, dof += static_cast<double>(n - 1);
    }
    const double m = static_cast<double>(it->second.size());
    const double sd = std::sqrt(std::max(0.0, sq / m - (sum / m) * (sum / m)));
    dof /= m;
    summary["evidence_one_window"][k] = {
        {"reads", it->second.size()}, {"passed", passed / m}, {"t_sd", sd}, {"dof", dof}};
    parts.push_back(fmt::format("{} {:.1f}% of {} (t sd {:.2f}; {:.2f} for Student's t)",
                                std::string(k) == "placebo" ? "references against each other" : k,
                                100 * passed / m, it->second.size(), sd,
                                dof > 2 ? student_t_sd(dof) : INFINITY));
  }
  std::string joined;
  for (const auto& x : parts) joined += (joined.empty() ? "" : "; ") + x;
  if (!parts.empty())
    fmt::print("the evidence test, one window alone at {:g}%, passes: {}\n", 100 * alpha, joined);
}

}  // namespace

int run_attack_experiment(const AttackOptions& o) {
  check(o.uids >= 4 && o.uids <= 4096, "experiment attack: --uids must be in [4, 4096]");
  check(o.cheat_share >= 0 && o.cheat_share < 1, "experiment attack: --cheat-share in [0, 1)");
  check(o.windows > 0 && o.inner_steps > 0 && o.batch_rows > 0 && o.threads > 0,
        "experiment attack: --windows, --inner-steps, --batch-rows and --threads must be positive");
  std::vector<Behaviour> mix;
  if (o.kinds == "all") {
    for (auto b : cheat_kinds())
      if (b != Behaviour::Garbage) mix.push_back(b);  // garbage never decodes: nothing to learn
  } else {
    size_t at = 0;
    while (at <= o.kinds.size()) {
      const auto comma = o.kinds.find(',', at);
      const auto name =
          o.kinds.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      const Behaviour b = parse_behaviour(name);
      check(b != Behaviour::Honest, "experiment attack: --kinds lists cheating kinds");
      mix.push_back(b);
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
  }
  NeuronHparams h;
  h.inner_steps = o.inner_steps;
  h.max_micro_batches = o.inner_steps;
  h.batch_rows = o.batch_rows;
  torch::set_num_threads(1);  // parallel over miners instead
  NeuronData data("", h);

  // Who is what: cheats spread over the uids by a seeded shuffle, kinds in turn.
  const int miners = o.uids - 1;
  const int cheaters = static_cast<int>(std::lround(o.cheat_share * miners));
  std::vector<int> order(miners);
  for (int i = 0; i < miners; ++i) order[i] = i + 1;
  for (int i = miners - 1; i > 0; --i) std::swap(order[i], order[rng::at(o.seed, i) % (i + 1)]);
  std::vector<std::optional<Behaviour>> kinds(o.uids, Behaviour::Honest), clean(o.uids);
  kinds[0] = clean[0] = std::nullopt;
  std::sort(order.begin(), order.begin() + cheaters);  // kinds in uid order among the cheaters
  for (int c = 0; c < cheaters; ++c) kinds[order[c]] = mix[c % mix.size()];
  for (int i = 1; i < o.uids; ++i)
    if (kinds[i] == Behaviour::Honest) clean[i] = Behaviour::Honest;

  fmt::print(
      "experiment attack: {} uids ({} honest miners, {} cheaters of {} kinds), {} windows, "
      "H = {}, {} rows\n",
      o.uids, miners - cheaters, cheaters, mix.size(), o.windows, o.inner_steps, o.batch_rows);
  const SimResult att = simulate(o, h, data, kinds);
  std::optional<SimResult> ref;
  if (o.clean) {
    fmt::print("the same subnet without the cheaters:\n");
    ref = simulate(o, h, data, clean);
  }

  // Per kind.
  std::map<std::string, std::vector<double>> by_kind;
  double total = 0;
  for (int i = 1; i < o.uids; ++i)
    if (att.present[i])
      by_kind[behaviour_name(att.kind[i])].push_back(att.incentive[i]), total += att.incentive[i];
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / v.size();
  };
  const double honest_mean = mean(by_kind["honest"]);
  nlohmann::json summary = {{"uids", o.uids},
                            {"windows", o.windows},
                            {"cheaters", cheaters},
                            {"inner_steps", o.inner_steps},
                            {"kinds", nlohmann::json::object()}};
  fmt::print("\n{:<17} {:>5} {:>14} {:>8} {:>12}\n", "kind", "uids", "incentive/uid", "share",
             "vs honest");
  double worst_ratio = 0;
  std::string worst_kind;
  for (auto& [k, v] : by_kind) {
    double s = 0;
    for (double x : v) s += x;
    const double ratio = honest_mean > 0 ? mean(v) / honest_mean : 0;
    fmt::print("{:<17} {:>5} {:>14.6f} {:>7.2f}% {:>11.1f}%\n", k, v.size(), mean(v),
               total > 0 ? 100 * s / total : 0.0, 100 * ratio);
    summary["kinds"][k] = {{"uids", v.size()},
                           {"incentive_per_uid", mean(v)},
                           {"share", total > 0 ? s / total : 0.0},
                           {"vs_honest", ratio}};
    if (k != "honest" && ratio > worst_ratio) worst_ratio = ratio, worst_kind = k;
  }
  // Sybil operators as a whole (the main uid and its sybils), against one honest miner.
  std::map<int, std::vector<int>> operators;  // the main uid -> its sybils
  for (int i = 1; i < o.uids; ++i)
    if (att.present[i] && att.kind[i] == Behaviour::Sybil && att.copy_of[i] > 0)
      operators[att.copy_of[i]].push_back(i);
  // An operator's pay: its main uid's and its sybils', `pay(uid)` each.
  auto operators_pay = [&](auto pay) {
    double s = 0;
    for (const auto& [main, sybils] : operators) {
      s += pay(main);
      for (int i : sybils) s += pay(i);
    }
    return s;
  };
  const double sybil_op = operators_pay([&](int i) { return att.incentive[i]; });
  const size_t sybil_ops = operators.size();
  // Copiers against their sources.
  int copiers = 0, out_earned = 0;
  for (int i = 1; i < o.uids; ++i)
    if (att.present[i] && att.copy_of[i] > 0) {
      ++copiers;
      out_earned += att.incentive[i] > att.incentive[att.copy_of[i]];
    }
  double hmax = 0, hmin = INFINITY;
  for (double x : by_kind["honest"]) hmax = std::max(hmax, x), hmin = std::min(hmin, x);
  const double honest_share =
      total > 0 ? mean(by_kind["honest"]) * by_kind["honest"].size() / total : 0;
  // The same spread over the windows after every honest miner had been measured once: with a
  // scoring budget, the first windows pay only the miners measured so far, an artefact of 255
  // miners appearing at once (a miner that registers later ramps up from zero either way).
  double smax = 0, smin = INFINITY, honest_steady = 0, operators_steady = 0;
  const uint64_t steady_from = att.honest_all_measured + 1;
  auto steady_pay = [&](int i) {
    double s = 0;
    for (uint64_t w = steady_from; w < att.incentive_by_window.size(); ++w)
      s += att.incentive_by_window[w][i];
    return s;
  };
  if (steady_from < att.incentive_by_window.size()) {
    for (int i = 1; i < o.uids; ++i) {
      if (!att.present[i] || att.kind[i] != Behaviour::Honest) continue;
      const double s = steady_pay(i);
      smax = std::max(smax, s), smin = std::min(smin, s), honest_steady += s;
    }
    honest_steady /= std::max<size_t>(1, by_kind["honest"].size());
    operators_steady = operators_pay(steady_pay);
  }
  const double operator_steady =
      sybil_ops && honest_steady > 0 ? operators_steady / sybil_ops / honest_steady : 0.0;
  // The least spread any pay that waits for a miner's first measurement can reach in this run:
  // each window shared equally by the honest miners measured by then (nothing else paid).
  std::map<uint16_t, double> equal;
  for (uint64_t w = 0; w < static_cast<uint64_t>(o.windows); ++w) {
    std::vector<uint16_t> paid;
    for (const auto& [uid, first] : att.honest_first_measured)
      if (first <= w) paid.push_back(uid);
    for (uint16_t uid : paid) equal[uid] += 1.0 / paid.size();
  }
  double emax = 0, emin = equal.size() == by_kind["honest"].size() ? INFINITY : 0;
  for (const auto& [uid, x] : equal) emax = std::max(emax, x), emin = std::min(emin, x);
  const double equal_spread = emin > 0 ? emax / emin : INFINITY;
  summary["honest_spread_bound"] = equal_spread;
  std::vector<double> vs = att.validator_seconds;
  std::sort(vs.begin(), vs.end());
  const double v_median = vs.empty() ? 0 : vs[vs.size() / 2];
  summary["honest_share"] = honest_share;
  summary["worst_cheat_kind"] = worst_kind;
  summary["worst_cheat_vs_honest"] = worst_ratio;
  summary["sybil_operator_vs_honest"] =
      sybil_ops && honest_mean > 0 ? sybil_op / sybil_ops / honest_mean : 0.0;
  summary["copiers"] = copiers;
  summary["copiers_out_earning_source"] = out_earned;
  summary["honest_max_over_min"] = hmin > 0 ? hmax / hmin : INFINITY;
  summary["honest_all_measured_by_window"] = att.honest_all_measured;
  summary["sybil_operator_vs_honest_steady"] = operator_steady;
  if (smax > 0) summary["honest_max_over_min_after"] = smin > 0 ? smax / smin : INFINITY;
  summary["master_first_loss"] = att.first_loss;
  summary["master_final_loss"] = att.final_loss;
  summary["validator_seconds_median"] = v_median;
  summary["honest_index_overlap_max"] = att.honest_index_overlap_max;
  summary["honest_index_overlap_mean"] = att.honest_index_overlap_mean;
  summary["rejections"] = att.rejections;
  // Who entered the records: per kind, and the honest admission rate.
  // A cheat's update in a record with pay (on evidence or trust) breaks the goal; unpaid, only a
  // data cheat's may enter: it helps on random pages, trained on pages other than its own.
  fmt::print("\n{:<17} {:>9} {:>9} {:>9}\n", "kind", "admitted", "unpaid", "left out");
  int cheats_admitted = 0, cheats_unpaid = 0;
  for (auto& [k, v] : by_kind) {
    const int in = att.admitted.count(k) ? att.admitted.at(k) : 0;
    const int unpaid = att.admitted_unpaid.count(k) ? att.admitted_unpaid.at(k) : 0;
    const int out = att.left_out.count(k) ? att.left_out.at(k) : 0;
    fmt::print("{:<17} {:>9} {:>9} {:>9}\n", k, in, unpaid, out);
    summary["kinds"][k]["admitted"] = in;
    summary["kinds"][k]["admitted_unpaid"] = unpaid;
    summary["kinds"][k]["left_out"] = out;
    if (k == "honest") continue;
    const bool helps = k == "data-cheat";
    cheats_unpaid += helps ? unpaid : 0;
    cheats_admitted += helps ? in - unpaid : in;
  }
  const int h_in = att.admitted.count("honest") ? att.admitted.at("honest") : 0;
  const int h_out = att.left_out.count("honest") ? att.left_out.at("honest") : 0;
  const double honest_admission = h_in + h_out > 0 ? double(h_in) / (h_in + h_out) : 0.0;
  summary["honest_admission"] = honest_admission;
  summary["cheat_updates_admitted"] = cheats_admitted;
  summary["data_cheat_updates_admitted_unpaid"] = cheats_unpaid;
  summary["score_budget"] = o.score_budget;
  const double sybil_vs = summary["sybil_operator_vs_honest"].get<double>();
  fmt::print("\nhonest miners' share of the incentive: {:.2f}% (goal >= 95%)\n",
             100 * honest_share);
  fmt::print("best-paid cheating kind: {} at {:.1f}% of the honest mean per uid (goal <= 10%)\n",
             worst_kind.empty() ? "-" : worst_kind, 100 * worst_ratio);
  if (sybil_ops)
    fmt::print(
        "a sybil operator (a miner and its sybils, one update) earns {:.2f} honest miners' "
        "pay (goal <= 1.1)\n",
        sybil_vs);
  fmt::print("copiers out-earning their source: {} of {}\n", out_earned, copiers);
  fmt::print(
      "honest pay spread (max / min mean incentive): {:.2f} (goal <= 2; {:.2f} if every honest "
      "miner were paid an equal share from its first measurement)\n",
      summary["honest_max_over_min"].get<double>(), equal_spread);
  if (att.honest_all_measured < static_cast<uint64_t>(o.windows))
    fmt::print("every honest miner measured once by window {}{}\n", att.honest_all_measured,
               smax > 0 ? fmt::format("; over windows {}-{}: the pay spread {:.2f}, a sybil "
                                      "operator {:.2f} honest miners' pay",
                                      steady_from, o.windows - 1, smin > 0 ? smax / smin : INFINITY,
                                      operator_steady)
                        : "");
  fmt::print("honest miners' index overlap: mean {:.3f}, max {:.3f} (copy threshold {:.2f})\n",
             att.honest_index_overlap_mean, att.honest_index_overlap_max, h.copy_indices);
  fmt::print(
      "validator per window (checks, scoring, judgement, outer step, guard): median {:.2f} s\n",
      v_median);
  fmt::print(
      "honest updates admitted to the records: {:.1f}%; cheats' updates admitted: {} (goal "
      "0; besides, data cheats' helpful updates admitted unpaid: {})\n",
      100 * honest_admission, cheats_admitted, cheats_unpaid);
  report_evidence_test(att, h.evidence_alpha, summary);
  summary["held_windows"] = att.held;
  fmt::print(
      "pay held back for miners awaiting their first measurement (uid 0): {:.2f} windows' worth "
      "of {}\n",
      att.held, o.windows);
  summary["null_spread_last"] = att.null_spread;
  fmt::print("the test's t divided by the null's measured spread: {:.2f} in the last window\n",
             att.null_spread);
  fmt::print("master held-out loss: {:.4f} -> {:.4f}", att.first_loss, att.final_loss);
  bool ok = honest_share >= 0.95 && worst_ratio <= 0.10 && out_earned == 0 && hmin > 0 &&
            hmax / hmin <= 2.0 && sybil_vs <= 1.1 && cheats_admitted == 0;
  // The held-out loss moves by 1-2% from one window to the next: the goal compares the mean of
  // the last five windows (the last window alone is printed too).
  auto tail = [](const std::vector<double>& v) {
    double s = 0;
    const size_t n = std::min<size_t>(5, v.size());
    for (size_t i = v.size() - n; i < v.size(); ++i) s += v[i];
    return n ? s / static_cast<double>(n) : 0.0;
  };
  summary["master_last5_loss"] = tail(att.losses);
  fmt::print("; mean of the last 5 windows {:.4f}", tail(att.losses));
  if (ref) {
    const double rel = tail(att.losses) / tail(ref->losses) - 1;
    summary["clean_final_loss"] = ref->final_loss;
    summary["clean_last5_loss"] = tail(ref->losses);
    summary["loss_vs_clean"] = rel;
    summary["final_loss_vs_clean"] = att.final_loss / ref->final_loss - 1;
    fmt::print("\nwithout the cheaters: {:.4f}, last 5 windows {:.4f} ({:+.2f}%, goal within 1%)",
               ref->final_loss, tail(ref->losses), 100 * rel);
    ok = ok && rel <= 0.01;
  }
  fmt::print("\n");
  summary["goals_met"] = ok;
  if (!o.summary.empty()) {
    std::ofstream f(o.summary, std::ios::app);
    f << summary.dump() << "\n";
  }
  if (o.check && !ok) {
    fmt::print("experiment attack: a goal is not met\n");
    return 1;
  }
  return 0;
}

}  // namespace bistro
