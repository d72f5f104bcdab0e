// The miner's wait for record(w-1) (docs/protocol.md, "A miner uses its window"): it never
// idles while the record is pending, and moves what its steps made onto theta_w when the final
// record lands.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "bistro/core/error.hpp"
#include "bistro/miner/loco_miner.hpp"
#include "bistro/protocol/arrivals.hpp"

namespace bistro {
namespace {

bool holds(const WindowRecord& r, uint16_t uid) {
  return std::any_of(r.accepted.begin(), r.accepted.end(),
                     [&](const RecordEntry& e) { return e.uid == uid; });
}

}  // namespace

bool LocoMiner::train_while_waiting(MinerWindow& x) {
  // It never idles while it can step from a point near theta_w, and moves what those steps made
  // onto theta_w when the final record lands (local += theta_w - start):
  // - once the lead's record(w-1) is out but not final yet, from the theta it gives (exact
  //   whenever that record is the one made final, the common case: a censor's records, which
  //   the followers attest only after measuring what it left out, were final 60-70% of a
  //   window after the last upload);
  // - before that, from where window w-1's steps ended (local_{w-1}): one outer step away from
  //   theta_w, on a trajectory that made that step's progress already. Steps from theta_{w-1}
  //   (tried first) learn it again, and the rebased update overshot (the random loss rose by 0.8
  //   after every record; docs/benchmarks.md). Where the weights are not window w-1's end (a
  //   restart, a skipped window), it waits for the published record instead.
  // Before 2026-12-07 the miner gathered these gradients for one larger first step: a wait
  // bought one step. The record is looked for at most once per poll interval.
  const double spb = chain_->seconds_per_block();
  const double poll = default_poll_interval(spb * static_cast<double>(h_.blocks_per_window));
  auto last_look = std::chrono::steady_clock::now() - std::chrono::hours(1);
  bool can_step = local_at_ && *local_at_ + 1 == x.w;
  std::vector<torch::Tensor> start;  // where the local steps started: local_{w-1} or theta-hat
  auto published = Published::NotOut;
  double per_step = 0, loss_sum = 0;
  int64_t tokens = 0;
  // Steps from window w-1's end assume the record carries this miner's progress of w-1: where
  // it does not (a censor, an empty record, the guard), they are given up and the window's
  // micro-batches start again from the record's theta. Moved over, they learned the miner's own
  // pages again at a point that had not (the censored miner's updates came out weaker).
  auto drop_steps = [&] {
    log(1, fmt::format("window {}: record {} does not hold this miner's update: the {} steps "
                       "taken from window {}'s end start again from the record",
                       x.w, x.w - 1, x.waiting_steps, x.w - 1));
    x.used -= x.waiting_steps, x.inner.steps -= x.waiting_steps, x.inner.tokens -= tokens;
    x.dropped_steps += x.waiting_steps, x.waiting_steps = 0, tokens = 0, loss_sum = 0;
    x.inner.loss = 0;
  };
  while (!(at_ && *at_ == x.w)) {
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_look).count() >= poll) {
      last_look = now;
      at_ = sync_->catch_up(shared_, at_, x.w, 0);  // one look, no waiting
      if (published == Published::NotOut && !(at_ && *at_ == x.w)) {
        const bool from_end = !start.empty();
        published = move_to_published(x, start);
        if (published == Published::TrainedOn && from_end && !x.holds_own) drop_steps();
      }
      can_step = can_step || !start.empty();
      x.timer.lap("wait");
      continue;
    }
    if (!can_step || x.inner.steps >= h_.max_inner_steps || !in_time(x, per_step)) {
      at_ = sync_->catch_up(shared_, at_, x.w, x.deadline);  // wait for it
      x.timer.lap("wait");
      break;
    }
    if (start.empty()) start = clone_parameters(local_);
    const auto t = std::chrono::steady_clock::now();
    ranks_.tell(RankOp::Step, x.batches->key(), x.used);
    const auto s = trainer_.step({batch(x, x.used++)});
    loss_sum += s.loss, x.inner.tokens += s.tokens, ++x.inner.steps, ++x.waiting_steps;
    tokens += s.tokens;
    x.inner.loss = loss_sum / static_cast<double>(x.inner.steps);
    per_step = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    x.timer.lap("inner");
  }
  if (!at_ || *at_ != x.w) {
    log(0, fmt::format("window {}: record {} did not come before the deadline (at {}); skipping "
                       "the window",
                       x.w, x.w - 1, at_ ? std::to_string(*at_) : "nothing"));
    return false;
  }
  // Steps from window w-1's end, and the final record lacks this miner's update: start again.
  if (!start.empty() && published != Published::TrainedOn && !final_holds_own(x.w - 1)) {
    drop_steps();
    start.clear();
  }
  if (start.empty()) {
    start_local(false);  // theta_w
    return true;
  }
  // Trained on the published record, `start` is its theta: equal to theta_w unless another
  // record was made final.
  const auto same = [](const torch::Tensor& a, const torch::Tensor& b) {
    return torch::equal(a, b);
  };
  if (published == Published::TrainedOn &&
      !std::equal(start.begin(), start.end(), theta_.begin(), theta_.end(), same))
    log(1, fmt::format("window {}: the record {} made final is not the one published first; the "
                       "steps taken on that one move onto the final one",
                       x.w, x.w - 1));
  rebase_parameters(local_, start, theta_);  // local += theta_w - start
  ranks_.tell(RankOp::SetParams, 0, 0, !ranks_synced_);
  ranks_synced_ = true;
  return true;
}

LocoMiner::Published LocoMiner::move_to_published(MinerWindow& x,
                                                  std::vector<torch::Tensor>& start) {
  std::optional<WindowRecord> r;
  std::vector<torch::Tensor> hat;
  try {
    // Who leads w-1 by the rules every validator applies (a miner otherwise learns of a lead
    // that came back only from its first final record, and looked in the old lead's bucket).
    if (!x.lead_chosen) sync_->choose_lead(x.w - 1), x.lead_chosen = true;
    r = sync_->fetch_lead_record(x.w - 1);
    if (!r) return Published::NotOut;
    hat = clone_parameters(theta_);  // theta_{w-1}
    sync_->apply_record(*r, hat);
  } catch (const std::exception& e) {
    // A bad record is the validators' business (a follower objects, the final one is another):
    // this miner only waits for the final one.
    log(1, fmt::format("window {}: not training on the published record {} before it is final: {}",
                       x.w, x.w - 1, error_line(e)));
    return Published::Refused;
  }
  // A record that is not final may be one no quorum will pass (an admit-all lead's record with
  // a poisoner's update in it): steps on it are taken at the wrong point. So it is trained on
  // only if it does not raise the loss of theta_{w-1} on the next micro-batch by more than
  // record_guard, the bound the validators' guard puts on a record. That bounds the worst case
  // only: in localnet's admit-all runs the poisoner's update, clipped to the median norm and
  // averaged with two honest ones, passed it (docs/benchmarks.md).
  const auto saved = clone_parameters(local_);
  const std::vector<Batch> probe = {batch(x, x.used)};
  copy_parameters(local_, theta_);
  const double before = mean_loss(trainer_.model(), probe);
  copy_parameters(local_, hat);
  const double after = mean_loss(trainer_.model(), probe);
  if (!(after <= before * (1 + h_.record_guard))) {
    copy_parameters(local_, saved);
    log(1, fmt::format("window {}: not training on the published record {} before it is final: "
                       "it raises the loss of a micro-batch from {:.4f} to {:.4f}",
                       x.w, x.w - 1, before, after));
    return Published::Refused;
  }
  // local = hat + (saved - start): the steps taken from local_{w-1}, if any, move onto hat
  // when it holds this miner's update (else the caller starts them again from hat).
  x.holds_own = holds(*r, uid_);
  if (!start.empty() && x.holds_own) rebase_parameters(local_, start, saved);
  start = std::move(hat);
  ranks_.tell(RankOp::SetParams, 0, 0, !ranks_synced_);
  ranks_synced_ = true;
  return Published::TrainedOn;
}

bool LocoMiner::final_holds_own(uint64_t u) {
  // Usually the record catch_up has just applied: not fetched again.
  if (const auto& r = sync_->last_applied(); r && r->window == u) return holds(*r, uid_);
  try {
    const auto r = sync_->fetch_record(u);
    return r && holds(*r, uid_);
  } catch (const std::exception& e) {
    log(1, fmt::format("window {}: cannot read the final record {}: {}", u + 1, u, error_line(e)));
    return false;
  }
}

}  // namespace bistro
