#include "bistro/localnet/attestations.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "bistro/identity/ss58.hpp"
#include "bistro/model/config.hpp"
#include "bistro/protocol/record_finality.hpp"
#include "bistro/storage/sigv4.hpp"

namespace bistro::localnet {

namespace {

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string arg_after(const std::vector<std::string>& argv, const std::string& flag) {
  const auto it = std::find(argv.begin(), argv.end(), flag);
  return it == argv.end() || it + 1 == argv.end() ? std::string() : *(it + 1);
}

}  // namespace

std::string summarize_attestations(const RunRecord& run, nlohmann::json& summary) {
  std::vector<ValidatorView> validators;
  std::map<std::string, std::string> name_of;  // hex key -> process name
  for (const auto& p : run.procs) {
    if (p.behaviour != "validator") continue;
    ValidatorView v;
    v.hotkey_ss58 = p.hotkey;
    v.key = to_hex(ss58_decode(p.hotkey));
    v.stake = static_cast<double>(p.stake) / 1e9;
    v.permit = true;  // the localnet's subnet gives every validator a permit (max_validators)
    v.bucket_url = arg_after(p.argv, "--bucket");
    name_of[v.key] = p.name;
    validators.push_back(v);
  }
  // How many final records hold each miner's update: the censorship rule's outcome.
  nlohmann::json holding = nlohmann::json::object();
  std::map<uint16_t, std::string> miner_of;
  for (const auto& p : run.procs)
    if (p.behaviour != "validator") miner_of[p.uid] = p.name, holding[p.name] = 0;
  // The lead's record latency (its record after the last upload) by window.
  std::map<uint64_t, double> record_latency;
  for (const auto& line : run.report)
    if (line.value("record_latency", -1.0) >= 0)
      record_latency[line["window"].get<uint64_t>()] = line["record_latency"].get<double>();
  const double window_ms = 1000 * run.block_time * static_cast<double>(run.h.blocks_per_window);
  auto names = [&](const std::vector<std::string>& keys) {
    std::vector<std::string> out;
    for (const auto& k : keys) out.push_back(name_of.count(k) ? name_of.at(k) : k.substr(0, 12));
    return fmt::format("{}", fmt::join(out, ", "));
  };
  uint64_t final_count = 0, windows_final = 0, censored = 0;
  std::vector<double> latency, after_upload;
  nlohmann::json refused = nlohmann::json::array(), rows = nlohmann::json::array();
  std::string html =
      "<h3>Records and their attestations</h3><table border='1' cellpadding='3' "
      "style='border-collapse:collapse'><tr><th>window</th><th>publisher</th><th>attested "
      "by</th><th>objected by</th><th>stake for / active</th><th>final</th><th>after the "
      "record</th><th>left out (by more than 1 - quorum)</th></tr>";
  const std::string chash = config_hash(preset(run.h.preset)), hhash = hparams_hash(run.h);
  for (uint64_t u = run.start; u < run.start + run.options.windows; ++u) {
    bool any_final = false;
    for (const auto& r : read_window_finality(validators, u, chash, hhash, run.h.quorum,
                                              [](const std::string&) {})) {
      const auto& f = r.finality;
      const std::string publisher =
          name_of.count(r.record.validator) ? name_of.at(r.record.validator) : r.publisher_ss58;
      const double after =
          r.final_ms && r.published_ms ? static_cast<double>(r.final_ms - r.published_ms) : -1.0;
      std::vector<uint16_t> uids;
      for (const auto& e : r.record.accepted) uids.push_back(e.uid);
      if (f.final) {
        ++final_count, any_final = true;
        censored += !f.censored.empty();
        for (uint16_t uid : uids)
          if (miner_of.count(uid))
            holding[miner_of.at(uid)] = holding[miner_of.at(uid)].get<int>() + 1;
        if (after >= 0 && window_ms > 0) {
          latency.push_back(after / window_ms);
          if (record_latency.count(u))
            after_upload.push_back((1000 * record_latency.at(u) + after) / window_ms);
        }
      }
      if (f.refused) {
        std::vector<std::string> reasons;
        for (const auto& [uid, why] : f.objections)
          for (const auto& y : why) reasons.push_back(fmt::format("uid {}: {}", uid, y));
        refused.push_back({{"window", u}, {"publisher", publisher}, {"reasons", reasons}});
      }
      rows.push_back({{"window", u},
                      {"publisher", publisher},
                      {"attested_by", names(f.attesters)},
                      {"objected_by", names(f.objectors)},
                      {"attested_stake", f.attested},
                      {"active_stake", f.active},
                      {"final", f.final},
                      {"refused", f.refused},
                      {"uids", uids},
                      {"censored", f.censored},
                      {"final_after_record_ms", after}});
      html += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0f} / {:.0f}</td><td "
          "style='background:{}'>{}</td><td>{}</td><td>{}</td></tr>",
          u, publisher, names(f.attesters), names(f.objectors), f.attested, f.active,
          f.final ? "#cfc" : "#fcc",
          f.final     ? "final"
          : f.refused ? "refused"
                      : "not final",
          after >= 0 ? fmt::format("{:.2f} s", after / 1000) : "-",
          f.censored.empty() ? "-" : fmt::format("uid {}", fmt::join(f.censored, ", ")));
    }
    windows_final += any_final;
  }
  summary["records_final"] = final_count;
  summary["windows_without_final_record"] = run.options.windows - windows_final;
  summary["records_refused"] = refused;
  summary["attestation_latency_share_of_window"] = median_of(latency);
  summary["final_after_last_upload_share_of_window"] = median_of(after_upload);
  summary["records"] = rows;
  summary["records_censored"] = censored;  // final records with Finality::censored
  summary["final_records_holding"] = holding;
  fmt::print(
      "  records final at quorum {:.2f} of the active stake: {} ({} of {} windows), {} refused; "
      "final {:.1f}% of a window after the record, {:.1f}% after the last upload (medians)\n",
      run.h.quorum, final_count, windows_final, run.options.windows, refused.size(),
      100 * median_of(latency), 100 * median_of(after_upload));
  return html + "</table>";
}

}  // namespace bistro::localnet
