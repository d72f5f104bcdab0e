// The localnet's view of finality (protocol/record_finality.hpp): after a run, every record of
// every window with its validators' attestations, read from their buckets, and what it adds to
// summary.json: records_final, records_refused (window, publisher, the objections' reasons),
// attestation_latency_share_of_window (median, from a record's Last-Modified to the attestation
// that reached the quorum) and final_after_last_upload_share_of_window. Nothing here gates the
// neurons: it reads what they published.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bistro/localnet/report.hpp"

namespace bistro::localnet {

// Adds the fields above to `summary` and prints one line; returns the HTML table of the records
// and their attestations.
std::string summarize_attestations(const RunRecord& run, nlohmann::json& summary);

}  // namespace bistro::localnet
