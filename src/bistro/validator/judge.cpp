#include "bistro/validator/judge.hpp"

#include <algorithm>

#include "bistro/validator/tie_groups.hpp"

namespace bistro {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A window's score joins the rating (an EMA, rating_ema the weight of the old value).
void move_rating(Rating& r, double score, const GauntletParams& p) {
  r.rating = p.rating_ema * r.rating + (1 - p.rating_ema) * score;
}

// A measured, rejected or missing update's rating moves with its window score; its trust, past
// evidence, measurement order and readings follow its verdict.
void rate_measured(Rating& r, const Observation& o, const Judgement& j, bool tied_out,
                   const Combined& c, const GauntletParams& p, uint64_t window) {
  move_rating(r, j.score, p);
  if (j.passed && !tied_out) {
    r.reading_sum = p.rating_ema * r.reading_sum + j.score;
    r.reading_weight = p.rating_ema * r.reading_weight + 1;
  }
  ++r.windows;
  if (o.status == "missing") return;  // trust and the measurement order stand
  r.trusted = o.status == "ok" && j.passed;
  if (has_evidence(o) || o.status != "ok") r.evidence_sum = c.sum, r.evidence_weight = c.weight;
  r.seen = window + 1;
  // A rejected upload counts as two failures: the checks see every upload without the budget,
  // so a miner that sends copies or late updates needs no prompt measurement. An inconclusive
  // failure counts as the first: the miner is measured again at once.
  r.failures = r.trusted               ? 0
               : inconclusive(o, c, p) ? 1
               : o.status == "ok"      ? r.failures + 1
                                       : std::max(r.failures + 1, 2u);
}

// A window of waiting for a first conclusive measurement: the rating moves with the prior's
// expected score, the median passing update's (1), held back (rating_weights).
void wait_a_window(Rating& r, const GauntletParams& p) {
  move_rating(r, 1.0, p);
  ++r.waited;
}

// A measured or rejected update of a miner awaiting its first conclusive measurement: a paid
// pass keeps the rating it built on the prior's score and owes the waited windows as back pay;
// an inconclusive failure waits on (measured again at once); anything else forfeits the wait
// (the rating starts from 0, as before it).
void rate_awaiting(Rating& r, const Observation& o, const Judgement& j, bool tied_out,
                   const Combined& c, const GauntletParams& p, uint64_t window) {
  const double rating = r.rating;
  const bool paid = j.passed && !tied_out, pending = !paid && inconclusive(o, c, p);
  if (paid) r.back_pay += r.waited, r.waited = 0;
  if (!paid && !pending) r.rating = 0, r.waited = 0;
  rate_measured(r, o, j, tied_out, c, p, window);
  if (pending) r.rating = rating, wait_a_window(r, p);
}

// A measured update that failed the evidence test alone and still lowers the random loss
// significantly (per sequence, at evidence_alpha): the model gains from it whoever's pages it
// learned, so it may enter the record, unpaid (rule 7, "helpful").
bool helps_without_evidence(const Observation& o, const GauntletParams& p) {
  return o.random.n >= 2 && losses_finite(o) &&
         significantly_positive(o.random, o.d_random, p.evidence_alpha);
}

}  // namespace

std::vector<Judgement> judge_window(const std::vector<Observation>& obs,
                                    std::map<std::string, Rating>& ratings, const GauntletParams& p,
                                    uint64_t window) {
  const WindowEvidence ev = read_evidence(obs, ratings, p);
  const auto pick = tie_group_picks(obs, ratings, ev);
  auto tied_out = [&](size_t i) {
    auto it = pick.find(i);
    return it != pick.end() && !it->second;
  };
  std::vector<Judgement> out(obs.size());
  std::vector<size_t> measured, unmeasured, helpful;  // candidates for the record
  std::vector<double> margins;                        // of the updates that passed
  std::vector<double> drops;  // d_random of the measured passers and the helpful candidates
  for (size_t i = 0; i < obs.size(); ++i) {
    const auto& o = obs[i];
    Judgement& j = out[i];
    j.uid = o.uid;
    if (o.status != "ok") {
      j.reason = o.status;
    } else if (!o.measured) {
      if (!is_trusted(ratings, o.hotkey))
        j.reason = "not measured this window, and not trusted yet";
      else if (tied_out(i))  // every unmeasured copy: only a measured one is picked
        j.reason = "uploaded at the same time as an equal update (a tied copy)";
      else
        unmeasured.push_back(i);
    } else if (j.reason = ev.tests[i]; j.reason.empty()) {
      j.passed = true;
      margins.push_back(o.margin());
      drops.push_back(o.d_random);
      if (tied_out(i))
        j.reason = "uploaded at the same time as an equal update with stronger evidence";
      else
        measured.push_back(i);
    } else if (!pick.count(i) && helps_without_evidence(o, p)) {
      // A tie group's members enter only on evidence or trust (one update, one place).
      helpful.push_back(i);
      drops.push_back(o.d_random);
    }
  }
  // Pay: the margin relative to the median margin of the updates with evidence, floored and
  // capped; nothing without evidence, and a tie group's update is paid once. An unmeasured
  // update pays its miner's expected score.
  const double ref = median(margins);
  for (size_t i = 0; i < obs.size(); ++i) {
    const auto& o = obs[i];
    Judgement& j = out[i];
    if (j.passed && ref > 0 && !tied_out(i)) {
      const double x = (o.margin() / ref - p.margin_floor) / (1 - p.margin_floor);
      j.score = std::clamp(x, 0.0, p.score_cap);
    }
    Rating& r = ratings[o.hotkey];  // a new hotkey awaits its first measurement
    const bool awaiting = o.status != "missing" && awaits_first_measurement(r);
    if (o.status == "ok" && !o.measured) {
      if (awaiting) {
        wait_a_window(r, p);
      } else {
        move_rating(r, tied_out(i) ? 0.0 : unmeasured_pay(r, p), p);
      }
      ++r.windows;
    } else if (awaiting) {
      rate_awaiting(r, o, j, tied_out(i), ev.combined[i], p, window);
    } else {
      rate_measured(r, o, j, tied_out(i), ev.combined[i], p, window);
    }
  }
  // Back pay, a window's worth at a time while the miner keeps its trust.
  for (const auto& o : obs) {
    auto it = ratings.find(o.hotkey);
    if (it == ratings.end()) continue;
    Rating& r = it->second;
    r.paying_back = r.trusted ? std::min(1.0, r.back_pay) : 0.0;
    r.back_pay -= r.paying_back;
  }
  // The record: measured passers best on random pages first (ties: lower uid), then trusted
  // unmeasured updates best rating first, at most record_peers of them.
  std::stable_sort(measured.begin(), measured.end(),
                   [&](size_t a, size_t b) { return obs[a].d_random > obs[b].d_random; });
  std::stable_sort(unmeasured.begin(), unmeasured.end(), [&](size_t a, size_t b) {
    return ratings[obs[a].hotkey].rating > ratings[obs[b].hotkey].rating;
  });
  measured.insert(measured.end(), unmeasured.begin(), unmeasured.end());
  // Then the helpful updates without evidence, best on random pages first: at least half as
  // strong there as the median of the measured passers and themselves (a weak update would only
  // dilute the outer step), and never more of them than of the updates with evidence or trust
  // (at least one): most of a record's updates are paid work, and a cheat that helps fills at
  // most half of it.
  const double strong = 0.5 * median(drops);
  std::stable_sort(helpful.begin(), helpful.end(),
                   [&](size_t a, size_t b) { return obs[a].d_random > obs[b].d_random; });
  const size_t paid_places = std::min(measured.size(), p.record_peers);
  size_t unpaid = 0;
  for (size_t i : helpful) {
    if (obs[i].d_random < strong || unpaid >= std::max<size_t>(1, paid_places)) continue;
    measured.push_back(i);
    out[i].unpaid = true;
    ++unpaid;
  }
  for (size_t n = 0; n < measured.size(); ++n) {
    if (n < p.record_peers)
      out[measured[n]].admitted = true;
    else
      out[measured[n]].reason = "outside the record's best " + std::to_string(p.record_peers),
      out[measured[n]].unpaid = false;
  }
  return out;
}

std::vector<PeerUpdate> admitted_best_first(const std::vector<Judgement>& verdicts,
                                            const std::vector<Observation>& obs,
                                            const std::map<uint16_t, Update>& updates) {
  std::vector<size_t> order;
  for (size_t i = 0; i < verdicts.size() && i < obs.size(); ++i)
    if (verdicts[i].admitted && updates.count(obs[i].uid)) order.push_back(i);
  // Measured passers first, best on random pages first; then the unmeasured, in the order given;
  // then the helpful ones without evidence, best first (the guard cuts from the end).
  auto rank = [&](size_t x) { return verdicts[x].unpaid ? 2 : obs[x].measured ? 0 : 1; };
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    if (rank(x) != rank(y)) return rank(x) < rank(y);
    return obs[x].measured && obs[x].d_random > obs[y].d_random;
  });
  std::vector<PeerUpdate> out;
  for (size_t i : order) out.push_back({obs[i].uid, &updates.at(obs[i].uid)});
  return out;
}

}  // namespace bistro
