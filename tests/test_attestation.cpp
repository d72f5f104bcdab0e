// Attestations and finality (protocol/attestation.hpp, protocol/finality.hpp): a validator's signed
// statement on record(u), every way a hostile one is refused or ignored, and the stake quorum that
// makes a record final, at the stakes 1000/500/250 (the lead 57%, under 2/3).
#include <gtest/gtest.h>

#include "bistro/identity/signer.hpp"
#include "bistro/protocol/finality.hpp"
#include "bistro/storage/sigv4.hpp"

namespace bistro {
namespace {

struct Subnet {
  std::unique_ptr<Signer> lead = ed25519_signer({1}), second = ed25519_signer({2}),
                          third = ed25519_signer({3}), outsider = ed25519_signer({4}),
                          unpermitted = ed25519_signer({5});
  static std::string key(const Signer& s) { return to_hex(s.public_key()); }
  std::vector<StakedValidator> validators() const {
    return {{key(*lead), 1000, true},
            {key(*second), 500, true},
            {key(*third), 250, true},
            {key(*unpermitted), 900, false}};
  }
  WindowRecord record(const Signer& by) const {
    WindowRecord r;
    r.window = 9;
    r.config_hash = std::string(64, 'c');
    r.hparams_hash = std::string(64, 'd');
    r.base_hash = std::string(32, 'a');
    r.params_hash = std::string(32, 'b');
    r.accepted = {{1, "5Fminer1", std::string(64, '1')}, {7, "5Fminer7", std::string(64, '7')}};
    r.validator = key(by);
    return r;
  }
  // `by`'s attestation of `r` (whose bytes hash to `sha`), objecting to `uids` if any.
  Attestation attest(const Signer& by, const WindowRecord& r, const std::string& sha,
                     std::vector<uint16_t> uids = {}) const {
    Attestation a;
    a.window = r.window;
    a.record_sha256 = sha;
    a.publisher = r.validator;
    a.harm_alpha = 0.01;
    for (uint16_t u : uids)
      a.objections.push_back(
          {u, std::string(64, static_cast<char>('0' + u)), -4.2, 32, "raises the loss"});
    a.objects = !uids.empty();
    // Through the wire, as a reader gets it.
    return parse_attestation(encode_attestation({a}, by), r.window, key(by)).at(0);
  }
};

const std::string kSha(64, 'f');

std::string error_of(const std::string& bytes, uint64_t window, const std::string& validator) {
  try {
    parse_attestation(bytes, window, validator);
  } catch (const AttestationError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(Attestation, RoundTripsSignedAndRefusesEachProblemByName) {
  Subnet s;
  const auto r = s.record(*s.lead);
  const auto a = s.attest(*s.second, r, kSha, {7});
  EXPECT_TRUE(a.objects);
  ASSERT_EQ(a.objections.size(), 1u);
  EXPECT_EQ(a.objections[0].uid, 7);
  EXPECT_EQ(a.objections[0].n, 32u);
  EXPECT_DOUBLE_EQ(a.objections[0].z, -4.2);
  EXPECT_EQ(a.validator, Subnet::key(*s.second));
  EXPECT_EQ(attestation_key(9), "attestations/0000000009.json");

  Attestation plain;
  plain.window = 9, plain.record_sha256 = kSha, plain.publisher = r.validator;
  const std::string good = encode_attestation({plain}, *s.second);
  const std::string who = Subnet::key(*s.second);
  EXPECT_EQ(error_of(good, 9, who), "accepted");
  EXPECT_NE(error_of(good, 10, who).find("it says window 9"), std::string::npos);
  // Found in another validator's bucket: not its statement.
  EXPECT_NE(error_of(good, 9, Subnet::key(*s.third)).find("found in validator"), std::string::npos);
  auto tampered = good;
  tampered.replace(tampered.find("\"attest\""), 8, "\"object\"");
  EXPECT_NE(error_of(tampered, 9, who).find("does not verify"), std::string::npos);
  EXPECT_NE(error_of("[1]", 9, who).find("not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(std::string(kMaxAttestationBytes + 1, ' '), 9, who).find("over the limit"),
            std::string::npos);
  // Well signed but inconsistent: objects without naming an update.
  Attestation empty_objection = plain;
  empty_objection.objects = true;
  EXPECT_NE(
      error_of(encode_attestation({empty_objection}, *s.second), 9, who).find("names no update"),
      std::string::npos);
  Attestation unordered = plain;
  unordered.objects = true;
  unordered.objections = {{7, std::string(64, '7'), -3, 8, "x"},
                          {1, std::string(64, '1'), -3, 8, "x"}};
  EXPECT_NE(error_of(encode_attestation({unordered}, *s.second), 9, who).find("ascending"),
            std::string::npos);
  Attestation bad_hash = plain;
  bad_hash.record_sha256 = "abc";
  EXPECT_NE(error_of(encode_attestation({bad_hash}, *s.second), 9, who).find("record_sha256"),
            std::string::npos);
}

// One file, one statement per record: an objection to one record beside the attestation of its
// replacement; never two attestations, nor two statements on one record.
TEST(Attestation, HoldsOneStatementPerRecordAndAttestsOneRecordAWindow) {
  Subnet s;
  const std::string who = Subnet::key(*s.second);
  Attestation objection, attest;
  objection.window = attest.window = 9;
  objection.record_sha256 = kSha, objection.publisher = Subnet::key(*s.lead);
  objection.objects = true;
  objection.objections = {{7, std::string(64, '7'), -5, 16, "raises the loss"}};
  attest.record_sha256 = std::string(64, 'e'), attest.publisher = who;
  const auto both = parse_attestation(encode_attestation({objection, attest}, *s.second), 9, who);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_TRUE(both[0].objects);
  EXPECT_EQ(both[0].publisher, Subnet::key(*s.lead));
  EXPECT_FALSE(both[1].objects);
  EXPECT_EQ(both[1].record_sha256, std::string(64, 'e'));
  EXPECT_EQ(both[1].validator, who);
  Attestation second_attest = attest;
  second_attest.record_sha256 = std::string(64, 'd');
  EXPECT_NE(error_of(encode_attestation({attest, second_attest}, *s.second), 9, who)
                .find("attests 2 records"),
            std::string::npos);
  Attestation same_record = objection;
  same_record.objects = false, same_record.objections.clear();
  EXPECT_NE(error_of(encode_attestation({objection, same_record}, *s.second), 9, who)
                .find("two statements on record"),
            std::string::npos);
  EXPECT_NE(error_of(encode_attestation({}, *s.second), 0, who).find("statements"),
            std::string::npos);
}

// Every byte flipped (hostile bytes; CI runs this under ASan and UBSan): refused, never accepted.
TEST(Attestation, SurvivesCorruption) {
  Subnet s;
  Attestation a;
  a.window = 9, a.record_sha256 = kSha, a.publisher = Subnet::key(*s.lead), a.objects = true;
  a.objections = {{7, std::string(64, '7'), -3.5, 16, "raises the loss"}};
  const auto good = encode_attestation({a}, *s.second);
  for (size_t i = 0; i < good.size(); ++i) {
    auto bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x55);
    try {
      parse_attestation(bad, 9, Subnet::key(*s.second));
      ADD_FAILURE() << "accepted an attestation corrupted at byte " << i;
    } catch (const AttestationError&) {
    }
  }
}

TEST(Finality, AStakeQuorumMakesARecordFinalAndObjectionsRefuseIt) {
  Subnet s;
  const auto r = s.record(*s.lead);
  const auto v = s.validators();
  const std::set<std::string> all = {Subnet::key(*s.lead), Subnet::key(*s.second),
                                     Subnet::key(*s.third)};
  // The lead's signature alone: 1000 of 1750 (57%) is under 2/3.
  auto f = finality(r, kSha, {}, v, all, 2.0 / 3);
  EXPECT_FALSE(f.final);
  EXPECT_DOUBLE_EQ(f.attested, 1000);
  EXPECT_DOUBLE_EQ(f.active, 1750);
  // With the third (1250 of 1750, 71%): final. With the second alone (1500, 86%): final.
  EXPECT_TRUE(finality(r, kSha, {s.attest(*s.third, r, kSha)}, v, all, 2.0 / 3).final);
  EXPECT_TRUE(finality(r, kSha, {s.attest(*s.second, r, kSha)}, v, all, 2.0 / 3).final);
  // The second objects (500 of 1750 = 29% is under 1/3): not refused yet, but not final either
  // until the third attests (1250 of 1750 >= 2/3).
  f = finality(r, kSha, {s.attest(*s.second, r, kSha, {7})}, v, all, 2.0 / 3);
  EXPECT_FALSE(f.final);
  EXPECT_FALSE(f.refused);
  EXPECT_EQ(f.objections.at(7).size(), 1u);
  f = finality(r, kSha, {s.attest(*s.second, r, kSha, {7}), s.attest(*s.third, r, kSha)}, v, all,
               2.0 / 3);
  EXPECT_TRUE(f.final);
  // Both followers object (750 of 1750 = 43% > 1/3): refused, never final.
  f = finality(r, kSha, {s.attest(*s.second, r, kSha, {7}), s.attest(*s.third, r, kSha, {1, 7})}, v,
               all, 2.0 / 3);
  EXPECT_TRUE(f.refused);
  EXPECT_FALSE(f.final);
  EXPECT_DOUBLE_EQ(f.objected, 750);
  // A lone validator: its record is final on its own signature.
  EXPECT_TRUE(finality(r, kSha, {}, {{Subnet::key(*s.lead), 1000, true}}, {}, 2.0 / 3).final);
  // A killed lead that is no longer active: the failover record of the second, attested by the
  // third, is final (750 of 750); while the lead still counts as active it is not (750 of 1750).
  const auto r2 = s.record(*s.second);
  const auto by_third = s.attest(*s.third, r2, kSha);
  EXPECT_TRUE(finality(r2, kSha, {by_third}, v, {Subnet::key(*s.third)}, 2.0 / 3).final);
  EXPECT_FALSE(finality(r2, kSha, {by_third}, v, all, 2.0 / 3).final);
  // A validator that comes back counts again by attesting: the lead attests r2 (1750 of 1750).
  EXPECT_TRUE(finality(r2, kSha, {by_third, s.attest(*s.lead, r2, kSha)}, v,
                       {Subnet::key(*s.third)}, 2.0 / 3)
                  .final);
}

// An attesting statement may name helpful updates the record left out; only an attestation may,
// in ascending uid, each with its evidence.
TEST(Attestation, NamesOmittedUpdatesOnlyWhenItAttests) {
  Subnet s;
  const std::string who = Subnet::key(*s.second);
  Attestation a;
  a.window = 9, a.record_sha256 = kSha, a.publisher = Subnet::key(*s.lead);
  a.omitted = {{3, std::string(64, '3'), 4.5, 64}, {8, std::string(64, '8'), 2.9, 64}};
  const auto back = parse_attestation(encode_attestation({a}, *s.second), 9, who).at(0);
  ASSERT_EQ(back.omitted.size(), 2u);
  EXPECT_EQ(back.omitted[1].uid, 8);
  EXPECT_DOUBLE_EQ(back.omitted[0].z, 4.5);
  EXPECT_EQ(back.omitted[0].n, 64u);
  Attestation objecting = a;
  objecting.objects = true;
  objecting.objections = {{7, std::string(64, '7'), -3, 8, "x"}};
  EXPECT_NE(
      error_of(encode_attestation({objecting}, *s.second), 9, who).find("only an attestation"),
      std::string::npos);
  Attestation unordered = a;
  std::swap(unordered.omitted[0], unordered.omitted[1]);
  EXPECT_NE(error_of(encode_attestation({unordered}, *s.second), 9, who).find("ascending"),
            std::string::npos);
  Attestation bad_sha = a;
  bad_sha.omitted[0].sha256 = "3";
  EXPECT_NE(error_of(encode_attestation({bad_sha}, *s.second), 9, who).find("omitted uid 3"),
            std::string::npos);
  Attestation too_many = a;
  too_many.omitted.clear();
  for (uint16_t u = 0; u <= kMaxOmissions; ++u) too_many.omitted.push_back({u, kSha, 3, 8});
  EXPECT_NE(error_of(encode_attestation({too_many}, *s.second), 9, who).find("1 to 64"),
            std::string::npos);
  // Every byte of one naming an omission flipped: refused (CI runs this under ASan and UBSan).
  const auto good = encode_attestation({a}, *s.second);
  for (size_t i = 0; i < good.size(); ++i) {
    auto bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x55);
    EXPECT_NE(error_of(bad, 9, who), "accepted") << "corrupted at byte " << i;
  }
}

// The censorship rule's count: an update left out that attesters holding more than 1 - quorum of
// the active stake name; the record stays final (an omission never changes what it holds).
TEST(Finality, OmissionsNamedByMoreThanOneThirdMarkTheRecordCensored) {
  Subnet s;
  const auto r = s.record(*s.lead);  // holds uids 1 and 7
  const auto v = s.validators();
  const std::set<std::string> all = {Subnet::key(*s.lead), Subnet::key(*s.second),
                                     Subnet::key(*s.third)};
  auto naming = [&](const Signer& by, std::vector<uint16_t> uids) {
    Attestation a;
    a.window = r.window, a.record_sha256 = kSha, a.publisher = r.validator, a.harm_alpha = 0.01;
    for (uint16_t u : uids) a.omitted.push_back({u, std::string(64, 'e'), 3.5, 32});
    return parse_attestation(encode_attestation({a}, by), r.window, Subnet::key(by)).at(0);
  };
  // Both followers name uid 3 (750 of 1750 = 43% > 1/3): final, and censored.
  auto f = finality(r, kSha, {naming(*s.second, {3}), naming(*s.third, {3, 4})}, v, all, 2.0 / 3);
  EXPECT_TRUE(f.final);
  EXPECT_EQ(f.censored, std::vector<uint16_t>{3});
  EXPECT_DOUBLE_EQ(f.omitted.at(3), 750);
  EXPECT_DOUBLE_EQ(f.omitted.at(4), 250);
  // One follower alone (500 of 1750 = 29%): not censored.
  f = finality(r, kSha, {naming(*s.second, {3}), naming(*s.third, {})}, v, all, 2.0 / 3);
  EXPECT_TRUE(f.final);
  EXPECT_TRUE(f.censored.empty());
  // Naming an update the record holds: that statement is ignored with its reason, not counted.
  f = finality(r, kSha, {naming(*s.second, {7}), naming(*s.third, {3})}, v, all, 2.0 / 3);
  EXPECT_TRUE(f.final);  // the third's 250 with the lead's 1000: 1250 of 1750
  EXPECT_TRUE(f.censored.empty());
  ASSERT_EQ(f.ignored.size(), 1u);
  EXPECT_NE(f.ignored[0].reason.find("the record holds it"), std::string::npos);
}

TEST(Finality, BadAttestationsAreIgnoredWithTheirReasonAndNeverCounted) {
  Subnet s;
  const auto r = s.record(*s.lead);
  const auto v = s.validators();
  const std::set<std::string> all = {Subnet::key(*s.lead), Subnet::key(*s.second),
                                     Subnet::key(*s.third)};
  auto reason = [&](const std::vector<Attestation>& found) {
    const auto f = finality(r, kSha, found, v, all, 2.0 / 3);
    EXPECT_DOUBLE_EQ(f.attested, 1000) << "only the publisher counts";
    EXPECT_DOUBLE_EQ(f.objected, 0);
    EXPECT_FALSE(f.final);
    return f.ignored.empty() ? std::string("none ignored") : f.ignored.back().reason;
  };
  EXPECT_NE(reason({s.attest(*s.outsider, r, kSha)}).find("not a validator's"), std::string::npos);
  EXPECT_NE(reason({s.attest(*s.unpermitted, r, kSha)}).find("without a validator permit"),
            std::string::npos);
  auto other_window = r;
  other_window.window = 8;
  EXPECT_NE(reason({s.attest(*s.third, other_window, kSha)}).find("for window 8"),
            std::string::npos);
  EXPECT_NE(reason({s.attest(*s.third, r, std::string(64, 'e'))}).find("another record"),
            std::string::npos);
  // An objection naming an update the record does not hold (uid 3), or by another hash.
  EXPECT_NE(reason({s.attest(*s.third, r, kSha, {3})}).find("does not hold"), std::string::npos);
  auto wrong_hash = s.attest(*s.third, r, kSha, {7});
  wrong_hash.objections[0].sha256 = std::string(64, '9');
  EXPECT_NE(reason({wrong_hash}).find("does not hold"), std::string::npos);
  EXPECT_NE(reason({s.attest(*s.lead, r, kSha, {7})}).find("its own record"), std::string::npos);
  // Sent twice: counted once (the second copy, an objection, is ignored and not counted).
  const auto f = finality(r, kSha, {s.attest(*s.third, r, kSha), s.attest(*s.third, r, kSha, {7})},
                          v, all, 2.0 / 3);
  EXPECT_DOUBLE_EQ(f.attested, 1250);
  EXPECT_DOUBLE_EQ(f.objected, 0);
  ASSERT_EQ(f.ignored.size(), 1u);
  EXPECT_NE(f.ignored[0].reason.find("twice"), std::string::npos);
}

// A lead above 1/3 of the stake (57%) whose record was refused cannot refuse its replacement:
// the replacement, holding only what the refused record held less the objected updates, is final
// on the other validators' stake. One that adds an update still needs the lead.
TEST(Finality, ARefusedLeadIsNotActiveForTheRecordThatReplacesIt) {
  Subnet s;
  const auto v = s.validators();
  const std::set<std::string> all = {Subnet::key(*s.lead), Subnet::key(*s.second),
                                     Subnet::key(*s.third)};
  const auto poisoned = s.record(*s.lead);  // uids 1 and 7; 7 is the poison
  const std::string poisoned_sha(64, 'f'), honest_sha(64, 'e'), greedy_sha(64, 'd');
  auto honest = s.record(*s.second);
  honest.accepted = {poisoned.accepted[0]};  // uid 1 only
  auto greedy = honest;                      // uid 1 and an update the lead's record lacked
  greedy.accepted.push_back({9, "5Fminer9", std::string(64, '9')});
  const std::vector<Attestation> found = {
      s.attest(*s.second, poisoned, poisoned_sha, {7}),
      s.attest(*s.third, poisoned, poisoned_sha, {7}), s.attest(*s.third, honest, honest_sha),
      s.attest(*s.lead, honest, honest_sha, {1})};  // ignored: its own record was refused
  auto f =
      window_finality({{poisoned, poisoned_sha}, {honest, honest_sha}}, found, v, all, 2.0 / 3);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_TRUE(f[0].refused);
  EXPECT_TRUE(f[1].final);
  EXPECT_DOUBLE_EQ(f[1].active, 750);
  EXPECT_DOUBLE_EQ(f[1].objected, 0);
  ASSERT_EQ(f[1].replaced.size(), 1u);
  EXPECT_EQ(f[1].replaced[0], Subnet::key(*s.lead));
  // Not a subset (uid 9 added): the lead stays active, and it is never final without the lead.
  const std::vector<Attestation> found_greedy = {found[0], found[1],
                                                 s.attest(*s.third, greedy, greedy_sha),
                                                 s.attest(*s.lead, greedy, greedy_sha, {9})};
  f = window_finality({{poisoned, poisoned_sha}, {greedy, greedy_sha}}, found_greedy, v, all,
                      2.0 / 3);
  EXPECT_TRUE(f[0].refused);
  EXPECT_FALSE(f[1].final);
  EXPECT_TRUE(f[1].replaced.empty());
  EXPECT_DOUBLE_EQ(f[1].active, 1750);
  // Without the refusal (only the second objects: 29%), the replacement gets no such help, and
  // the lead's attestation of it does not count: it published its own record of the window.
  const std::vector<Attestation> one_objection = {found[0], s.attest(*s.third, honest, honest_sha),
                                                  s.attest(*s.lead, honest, honest_sha)};
  f = window_finality({{poisoned, poisoned_sha}, {honest, honest_sha}}, one_objection, v, all,
                      2.0 / 3);
  EXPECT_FALSE(f[0].refused);
  EXPECT_FALSE(f[1].final);
  EXPECT_DOUBLE_EQ(f[1].attested, 750);
  EXPECT_NE(f[1].ignored.back().reason.find("published a record"), std::string::npos);
  // Judged in the order given, each once: the lead's objection to the replacement, judged
  // before the lead's own record was found refused, counts and refuses it (1000 of 1750).
  f = window_finality({{honest, honest_sha}, {poisoned, poisoned_sha}}, found, v, all, 2.0 / 3);
  EXPECT_TRUE(f[0].refused);
  EXPECT_TRUE(f[1].refused);
}

}  // namespace
}  // namespace bistro
