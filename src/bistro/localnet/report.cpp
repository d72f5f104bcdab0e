#include "bistro/localnet/report.hpp"

#include "bistro/localnet/attestations.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "bistro/core/files.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/data/local_dataset.hpp"
#include "bistro/model/hf_tokenizer.hpp"
#include "bistro/protocol/arrivals.hpp"
#include "bistro/protocol/catch_up.hpp"
#include "bistro/protocol/window.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/storage/s3_bucket.hpp"
#include "bistro/train/checkpoint.hpp"
#include "bistro/train/evaluate.hpp"

namespace bistro::localnet {
namespace fs = std::filesystem;
namespace {

using Points = std::vector<std::pair<double, double>>;
using SeriesMap = std::map<std::string, Points>;

// The upper median (0 for none): the localnet's per-window figures.
double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// What the report plots and tabulates, per window.
struct Series {
  SeriesMap master_loss, scores, ratings, weights, incentive;
  std::map<std::string, std::pair<double, int>> kind_incentive;  // kind -> (sum, uid-windows)
  std::string jsonl, csv;
};

Series collect_series(const RunRecord& run) {
  Series s;
  s.csv = "window,uid,name,kind,loss,score,rating,weight,incentive,emission_rao,theta,status\n";
  for (const auto& line : run.report) {
    s.jsonl += line.dump() + "\n";
    const double w = line["window"].get<double>();
    s.master_loss["master (held-out pages)"].emplace_back(w, line["master_loss"].get<double>());
    for (auto& [uid, c] : line["chain"].items()) {
      auto mj = line["miners"].value(uid, nlohmann::json::object());
      const std::string label =
          c["name"].get<std::string>() + " (" + c["kind"].get<std::string>() + ")";
      s.scores[label].emplace_back(w, mj.value("score", 0.0));
      s.ratings[label].emplace_back(w, mj.value("rating", 0.0));
      s.weights[label].emplace_back(w, mj.value("weight", 0.0));
      s.incentive[label].emplace_back(w, c["incentive"].get<double>());
      auto& ki = s.kind_incentive[c["kind"].get<std::string>()];
      ki.first += c["incentive"].get<double>(), ++ki.second;
      s.csv += fmt::format(
          "{},{},{},{},{},{},{},{},{},{},{},\"{}\"\n", line["window"].get<uint64_t>(), uid,
          c["name"].get<std::string>(), c["kind"].get<std::string>(),
          c["loss"].is_number() ? c["loss"].get<double>() : NAN, mj.value("score", 0.0),
          mj.value("rating", 0.0), mj.value("weight", 0.0), c["incentive"].get<double>(),
          c["emission"].get<uint64_t>(), c.value("theta", ""), mj.value("status", "-"));
    }
  }
  return s;
}

nlohmann::json base_summary(const RunRecord& run, const Series& s) {
  nlohmann::json summary = {
      {"windows", run.report.size()},        {"codec", run.h.codec},
      {"block_time", run.block_time},        {"validator_restarted", run.validator_killed},
      {"miner_restarted", run.miner_killed}, {"theta_compared", run.theta_compared},
      {"theta_agree", run.theta_agree},      {"processes", nlohmann::json::array()}};
  if (!run.report.empty()) {
    summary["first_master_loss"] = run.report.front()["base_loss"];
    summary["last_master_loss"] = run.report.back()["master_loss"];
    summary["final"] = run.report.back()["chain"];
    summary["final_scores"] = run.report.back()["miners"];
    summary["kind_incentive"] = nlohmann::json::object();
    for (auto& [kind, ki] : s.kind_incentive)
      summary["kind_incentive"][kind] = ki.second ? ki.first / ki.second : 0.0;
  }
  for (const auto& p : run.procs)
    summary["processes"].push_back(
        {{"name", p.name}, {"uid", p.uid}, {"kind", p.behaviour}, {"exit", p.exit_code}});
  return summary;
}

// Per-window time split (median over windows; miners pooled) and the validator's throughput.
void summarize_time(const RunRecord& run, bool loco, nlohmann::json& summary) {
  std::map<std::string, std::vector<double>> miner_laps, validator_laps;
  std::vector<double> inner_share;  // honest miners, their first window (start-up) left out
  for (size_t k = 1; k < run.procs.size(); ++k) {
    if (run.procs[k].behaviour == "validator") continue;  // the followers: summarize_validators
    const auto lines = read_jsonl(run.dir / "state" / run.procs[k].name / "metrics.jsonl");
    for (size_t i = 0; i < lines.size(); ++i) {
      const auto& ml = lines[i];
      for (auto& [stage, sec] : ml["seconds"].items())
        miner_laps[stage].push_back(sec.get<double>());
      if (!loco) miner_laps["verify (within gather)"].push_back(ml.value("verify_seconds", 0.0));
      if (loco && i > 0 && run.procs[k].behaviour == "honest")
        inner_share.push_back(ml.value("inner_share", 0.0));
    }
  }
  double scored = 0, busy = 0;
  for (const auto& line : run.report) {
    for (auto& [stage, sec] : line["seconds"].items()) {
      validator_laps[stage].push_back(sec.get<double>());
      busy += sec.get<double>();
    }
    validator_laps["verify (within gather)"].push_back(line.value("verify_seconds", 0.0));
    scored += line["accepted"].get<double>();
  }
  nlohmann::json split = {{"miner", nlohmann::json::object()},
                          {"validator", nlohmann::json::object()}};
  fmt::print("\ntime per window (median seconds)\n");
  for (auto& [stage, v] : miner_laps) {
    split["miner"][stage] = median(v);
    fmt::print("  miner     {:<24} {:8.3f}\n", stage, median(v));
  }
  for (auto& [stage, v] : validator_laps) {
    split["validator"][stage] = median(v);
    fmt::print("  validator {:<24} {:8.3f}\n", stage, median(v));
  }
  const double per_minute = busy > 0 ? scored / busy * 60.0 : 0.0;
  fmt::print("  validator throughput: {:.1f} updates scored per minute of validator work\n",
             per_minute);
  summary["time_split"] = split;
  summary["updates_scored_per_minute"] = per_minute;
  if (loco) summary["inner_share_median"] = median(inner_share);
}

// The honest miners' updates that entered the records (of those sent), over the run and its last
// third; the record's latency after the last upload; the validator's bucket requests.
void summarize_admission(const RunRecord& run, nlohmann::json& summary) {
  int sent = 0, in = 0, sent_late = 0, in_late = 0, skipped = 0;
  std::vector<double> latency, requests;
  for (size_t i = 0; i < run.report.size(); ++i) {
    const auto& line = run.report[i];
    const bool last_third = 3 * i >= 2 * run.report.size();
    skipped += line.value("skipped", false);
    for (auto& [uid, m] : line["miners"].items()) {
      const auto c = line["chain"].value(uid, nlohmann::json::object());
      if (c.value("kind", "") != "honest" || m.value("status", "missing") == "missing") continue;
      const bool accepted = m.value("accepted", false);
      ++sent, in += accepted;
      if (last_third) ++sent_late, in_late += accepted;
    }
    if (line.value("record_latency", -1.0) >= 0) latency.push_back(line["record_latency"]);
    requests.push_back(line.value("requests", 0.0));
  }
  const double window_s = run.block_time * static_cast<double>(run.h.blocks_per_window);
  summary["honest_admission"] = sent ? static_cast<double>(in) / sent : 0.0;
  summary["honest_admission_last_third"] =
      sent_late ? static_cast<double>(in_late) / sent_late : 0.0;
  summary["honest_updates_sent"] = sent;
  summary["record_latency_median"] = median(latency);
  summary["record_latency_share_of_window"] = window_s > 0 ? median(latency) / window_s : 0.0;
  summary["validator_requests_per_window"] = median(requests);
  // Windows that ended before their predecessor's record was out (the validator down or behind):
  // empty records, published at once.
  summary["windows_skipped"] = skipped;
  // The bound at 256 expected miners (arrivals.hpp): polls at most min(256 x 80, 50 x window)
  // plus one GET per update.
  summary["validator_requests_per_window_at_256_uids_bound"] =
      std::min(256.0 * 80.0, kMaxPollRate * window_s) + 256.0;
  fmt::print(
      "  honest updates in the records: {:.1f}% ({} of {}; last third {:.1f}%); record {:.2f}s "
      "({:.1f}% of a window) after the last upload (median)\n",
      100 * summary["honest_admission"].get<double>(), in, sent,
      100 * summary["honest_admission_last_third"].get<double>(), median(latency),
      100 * summary["record_latency_share_of_window"].get<double>());
}

// Protocol v2's own figures: the miners' time in inner steps and the cost of waiting for records.
// Every validator: its stake, role, validator trust and dividends (the chain's Yuma, at the last
// window), how many of its windows ended on the lead's theta, and a follower's time per window.
void summarize_validators(const RunRecord& run, nlohmann::json& summary) {
  std::map<uint64_t, std::string> lead_hash;  // theta_{u+1} by window u, as the lead holds it
  for (const auto& line : run.report)
    lead_hash[line["window"].get<uint64_t>()] = line.value("params_hash", "");
  summary["validators"] = nlohmann::json::array();
  const auto last = run.report.empty()
                        ? nlohmann::json::array()
                        : run.report.back().value("validators", nlohmann::json::array());
  // The windows no validator published a record for (the report holds one line per record).
  const uint64_t without_record =
      run.options.windows - std::min<uint64_t>(run.options.windows, run.report.size());
  for (const auto& v : last) {
    nlohmann::json out = v;
    out.erase("weights");
    out.erase("theta");
    uint64_t windows = 0, agree = 0;
    std::vector<double> seconds;
    for (const auto& ml :
         read_jsonl(run.dir / "state" / v["name"].get<std::string>() / "metrics.jsonl")) {
      ++windows;
      out["role"] = ml.value("role", "lead");
      auto it = lead_hash.find(ml["window"].get<uint64_t>());
      agree +=
          it != lead_hash.end() && !it->second.empty() && it->second == ml.value("params_hash", "");
      double total = 0;
      const auto laps = ml.value("seconds", nlohmann::json::object());  // (not a temporary)
      for (auto& [stage, sec] : laps.items()) total += sec.get<double>();
      seconds.push_back(total);
    }
    out["windows"] = windows;
    out["theta_agree"] = agree;
    out["seconds_per_window"] = median(seconds);
    summary["validators"].push_back(out);
    fmt::print(
        "  {}: {}{} (stake {:.0f} τ): vtrust {:.3f}, dividends {:.4f}; {} of {} windows on "
        "the lead's theta; {:.2f}s a window\n",
        v["name"].get<std::string>(), out.value("role", "-"),
        v.value("kind", "honest") == "honest" ? "" : ", " + v.value("kind", std::string()),
        v.value("stake", 0.0), v.value("vtrust", 0.0), v.value("dividends", 0.0), agree, windows,
        median(seconds));
  }
  summary["windows_without_record"] = without_record;
}

void summarize_loco(const RunRecord& run, nlohmann::json& summary) {
  double encode_outer = 0, total = 0;
  const auto& miner = summary["time_split"]["miner"];
  for (const char* stage : {"sync", "encode"}) encode_outer += miner.value(stage, 0.0);
  for (auto& [stage, v] : miner.items()) total += v.get<double>();
  summary["encode_and_outer_share"] = total > 0 ? encode_outer / total : 0.0;
  fmt::print(
      "  miners spent {:.1f}% of their wall time in inner steps (median window), {:.1f}% in "
      "encode + outer step\n",
      100 * summary.value("inner_share_median", 0.0),
      100 * summary["encode_and_outer_share"].get<double>());
  fmt::print("  parameter hashes: {} of {} miner windows equal the master's\n", run.theta_agree,
             run.theta_compared);
  summarize_admission(run, summary);
  summarize_validators(run, summary);
  std::vector<double> record_gets;
  for (size_t k = 1; k < run.procs.size(); ++k)
    for (const auto& ml : read_jsonl(run.dir / "state" / run.procs[k].name / "metrics.jsonl"))
      if (run.procs[k].behaviour != "validator")
        record_gets.push_back(ml.value("record_requests", 0.0));
  summary["miner_record_requests_per_window"] = median(record_gets);
}

// The single-node reference: one AdamW model on the union of the honest miners' pages, the same
// inner steps (each on every honest miner's micro-batch of that step), evaluated on the
// validator's held-out pages after each window.
Points run_baseline(const RunRecord& run) {
  const auto& h = run.h;
  std::vector<uint16_t> uids;
  for (size_t k = 1; k < run.procs.size(); ++k)
    if (run.procs[k].behaviour == "honest") uids.push_back(run.procs[k].uid);
  fmt::print("\nlocalnet: the single-node AdamW baseline on the union of {} miners' pages\n",
             uids.size());
  init_runtime(run.options.threads);
  NeuronData data("", h);
  const auto eval = data.held_out(h);
  Llama model(preset(h.preset));
  model->init_weights(h.init_seed);
  Trainer trainer(std::move(model), inner_train_options(h));
  Points out;
  for (uint64_t w = run.start; w < run.start + run.options.windows; ++w) {
    std::vector<std::vector<Batch>> per_miner;
    for (uint16_t uid : uids)
      per_miner.push_back(data.batches(
          pages(local_pages_key(w, uid), h.pages_per_window, data.configs), h.max_micro_batches));
    for (int64_t i = 0; i < h.inner_steps; ++i) {
      std::vector<Batch> step;
      for (const auto& b : per_miner)
        if (!b.empty()) step.push_back(b[static_cast<size_t>(i) % b.size()]);
      if (!step.empty()) trainer.step(step);
    }
    out.emplace_back(static_cast<double>(w), mean_loss(trainer.model(), eval));
    fmt::print("baseline: window {} held-out loss {:.4f}\n", w, out.back().second);
    std::fflush(stdout);
  }
  return out;
}

// `bistro eval` of every checkpoint the master published (downloaded from its bucket, read with
// the tokenizer it carries): held-out loss and perplexity on two held-out pages of the corpus.
nlohmann::json eval_checkpoints(const RunRecord& run) {
  const auto& o = run.options;
  const std::string url = o.bucket_url.empty()
                              ? "file://" + (run.dir / "buckets" / "validator").string()
                              : o.bucket_url + "-validator";
  auto bucket = open_bucket(url);
  std::set<uint64_t> windows;
  const std::string prefix = "checkpoints/", file = "/model.safetensors";
  for (const auto& obj : bucket->list(prefix)) {
    const auto& k = obj.key;
    const auto digits = k.size() > prefix.size() + file.size()
                            ? k.substr(prefix.size(), k.size() - prefix.size() - file.size())
                            : "";
    if (k.ends_with(file) && !digits.empty() &&
        digits.find_first_not_of("0123456789") == std::string::npos)
      windows.insert(std::stoull(digits));
  }
  init_runtime(o.threads);
  LocalDataset corpus(default_corpus_dir());
  const EvalOptions eo{.pages = 2, .batch_rows = run.h.batch_rows, .seq_len = run.h.seq_len};
  nlohmann::json out = nlohmann::json::array();
  for (uint64_t w : windows) {
    const auto dir = run.dir / "report" / "checkpoints" / fmt::format("{:010}", w);
    download_checkpoint(*bucket, url, w, dir);
    auto model = load_model(dir, torch::kCPU);
    const auto tok = checkpoint_tokenizer(dir, model->config().vocab_size);
    const auto r = eval_held_out(model, tok, corpus, "default corpus", eo);
    fmt::print(
        "  bistro eval of the master's checkpoint of window {}: loss {:.4f}, perplexity "
        "{:.2f} ({} tokens)\n",
        w, r.loss, r.perplexity, r.tokens);
    out.push_back(
        {{"window", w}, {"loss", r.loss}, {"perplexity", r.perplexity}, {"tokens", r.tokens}});
    fs::remove(dir / "model.safetensors");  // the bucket keeps it; the report needs the numbers
  }
  return out;
}

// One SVG line chart: series name -> (x, y) points.
std::string svg_chart(const std::string& title, const SeriesMap& series) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (auto& [n, pts] : series)
    for (auto [x, y] : pts)
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (!std::isfinite(x0)) return "<p>" + title + ": no data</p>";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1e-9, y0 -= 1e-9;
  const double W = 640, H = 300, L = 60, B = 30;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - 130); };
  auto py = [&](double y) { return 20 + (1 - (y - y0) / (y1 - y0)) * (H - 20 - B); };
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                 "#9467bd", "#8c564b", "#e377c2"};
  std::string s = fmt::format(
      "<h3>{}</h3><svg width='{}' height='{}' style='font:11px sans-serif'>"
      "<rect x='{}' y='20' width='{}' height='{}' fill='none' stroke='#999'/>"
      "<text x='2' y='24'>{:.4g}</text><text x='2' y='{}'>{:.4g}</text>"
      "<text x='{}' y='{}'>window {}</text><text x='{}' y='{}'>{}</text>",
      title, W, H, L, W - L - 130, H - 20 - B, y1, H - B, y0, L, H - 8, x0, W - 180, H - 8, x1);
  int c = 0;
  for (auto& [name, pts] : series) {
    std::string poly;
    for (auto [x, y] : pts) poly += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    const char* color = colors[c % 7];
    s += fmt::format("<polyline fill='none' stroke='{}' stroke-width='2' points='{}'/>", color,
                     poly);
    s += fmt::format("<text x='{}' y='{}' fill='{}'>{}</text>", W - 120, 35 + 14 * c, color, name);
    ++c;
  }
  return s + "</svg>";
}

// Protocol v2: each miner's theta per window against the master's.
std::string theta_table(const RunRecord& run, const nlohmann::json& summary) {
  std::string html = fmt::format(
      "<p>Parameter hashes: <b>{} of {}</b> miner windows held exactly the master's theta. "
      "Honest miners spent a median <b>{:.1f}%</b> of each window in inner steps.</p>",
      run.theta_agree, run.theta_compared, 100 * summary.value("inner_share_median", 0.0));
  html +=
      "<h3>theta per window (miner's hash vs the master's)</h3><table border='1' "
      "cellpadding='3' style='border-collapse:collapse'><tr><th>window</th>";
  for (size_t k = 1; k < run.procs.size(); ++k)
    if (run.procs[k].behaviour != "validator") html += "<th>" + run.procs[k].name + "</th>";
  html += "</tr>";
  for (const auto& line : run.report) {
    html += fmt::format("<tr><td>{}</td>", line["window"].get<uint64_t>());
    for (size_t k = 1; k < run.procs.size(); ++k) {
      if (run.procs[k].behaviour == "validator") continue;
      const std::string t = line["chain"]
                                .value(std::to_string(run.procs[k].uid), nlohmann::json::object())
                                .value("theta", "-");
      html += fmt::format("<td style='background:{}'>{}</td>",
                          t == "same"     ? "#cfc"
                          : t == "DIFFER" ? "#fcc"
                                          : "#fff",
                          t);
    }
    html += "</tr>";
  }
  return html + "</table>";
}

std::string html_report(const RunRecord& run, const nlohmann::json& summary, const Series& s,
                        const std::string& records_table) {
  const bool loco = run.h.codec == "sparseloco";
  std::string html =
      "<!doctype html><html><head><meta charset='utf-8'><title>bistro localnet</title></head>"
      "<body style='font-family:sans-serif'><h2>bistro localnet</h2>";
  html += fmt::format("<p>{} miners, {} windows, codec {}, run directory {}</p>",
                      run.options.miners, run.report.size(), run.h.codec, run.dir.string());
  if (loco) html += theta_table(run, summary) + records_table;
  html += svg_chart("Master loss per window (fixed held-out pages)", s.master_loss);
  // Who earned what, by kind: the cheats should end with nothing.
  html +=
      "<h3>Mean incentive per uid and window, by kind</h3><table border='1' cellpadding='3' "
      "style='border-collapse:collapse'><tr><th>kind</th><th>mean incentive</th></tr>";
  for (auto& [kind, ki] : s.kind_incentive)
    html += fmt::format("<tr><td>{}</td><td>{:.4f}</td></tr>", kind,
                        ki.second ? ki.first / ki.second : 0.0);
  html += "</table>";
  html += svg_chart(
      loco ? "Window score per miner (gauntlet)" : "Score per miner (EMA of loss improvement)",
      s.scores);
  if (loco) html += svg_chart("Rating per miner (EMA of window scores)", s.ratings);
  html += svg_chart("Weight per miner (this validator)", s.weights);
  html += svg_chart("Incentive per miner (Yuma)", s.incentive);
  if (run.options.validators > 1) {
    SeriesMap vtrust, dividends;
    for (const auto& line : run.report) {
      if (!line.contains("validators")) continue;
      for (const auto& v : line.at("validators")) {
        const std::string name = v["name"].get<std::string>() + " (" +
                                 fmt::format("{:.0f}", v.value("stake", 0.0)) + " τ)";
        const double w = line["window"].get<double>();
        vtrust[name].emplace_back(w, v.value("vtrust", 0.0));
        dividends[name].emplace_back(w, v.value("dividends", 0.0));
      }
    }
    html += svg_chart("Validator trust per validator (Yuma)", vtrust);
    html += svg_chart("Dividends per validator (Yuma)", dividends);
  }
  return html + "</body></html>\n";
}

}  // namespace

nlohmann::json write_report(const RunRecord& run) {
  const bool loco = run.h.codec == "sparseloco";
  const fs::path rdir = run.dir / "report";
  Series s = collect_series(run);
  nlohmann::json summary = base_summary(run, s);
  summarize_time(run, loco, summary);
  std::string records_table;
  if (loco) {
    summarize_loco(run, summary);
    records_table = summarize_attestations(run, summary);
    summary["checkpoint_evals"] = eval_checkpoints(run);
    for (const auto& e : summary["checkpoint_evals"])
      s.master_loss["published checkpoints (bistro eval, 2 pages)"].emplace_back(
          e["window"].get<double>(), e["loss"].get<double>());
  }
  if (run.options.baseline) {
    auto points = run_baseline(run);
    if (!points.empty()) summary["baseline_last_loss"] = points.back().second;
    s.master_loss["single-node AdamW (union of pages)"] = std::move(points);
  }
  write_file_atomic(rdir / "metrics.jsonl", s.jsonl);
  write_file_atomic(rdir / "metrics.csv", s.csv);
  write_file_atomic(rdir / "summary.json", summary.dump(2));
  write_file_atomic(rdir / "report.html", html_report(run, summary, s, records_table));
  fmt::print("\nlocalnet: report in {} (report.html, metrics.csv, metrics.jsonl, summary.json)\n",
             rdir.string());
  return summary;
}

}  // namespace bistro::localnet
