#include "bistro/compress/update.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "bistro/compress/chunks.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/identity/sr25519.hpp"

namespace bistro {
namespace {

TEST(Chunks, LargestDivisorAndPlans) {
  EXPECT_EQ(largest_divisor_at_most(2048, 64), 64);
  EXPECT_EQ(largest_divisor_at_most(1376, 64), 43);  // 1376 = 32 * 43
  EXPECT_EQ(largest_divisor_at_most(67, 64), 1);     // prime above 64: chunk 1
  EXPECT_EQ(largest_divisor_at_most(48, 64), 48);
  const auto m = chunk_plan({512, 1376});
  EXPECT_EQ(m.n1, 64);
  EXPECT_EQ(m.n2, 43);
  EXPECT_EQ(m.chunks(), 8 * 32);
  const auto v = chunk_plan({512});
  EXPECT_EQ(v.rows, 1);
  EXPECT_EQ(v.n2, 64);
  EXPECT_EQ(clamp_k(32, chunk_plan({67})), 1);   // all coefficients sent
  EXPECT_EQ(clamp_k(8, chunk_plan({128})), 64);  // a vector is sent whole
  EXPECT_EQ(clamp_k(8, chunk_plan({128, 128})), 8);
}

TEST(Slices, PositionsAreDistinctSortedAndDeterministic) {
  const uint8_t hash[32] = {9, 9, 9};
  const uint64_t key = slice_key(12, hash);
  const auto a = slice_positions(key, "model.layers.0.mlp.up_proj.weight", 1'000'000, 300);
  EXPECT_EQ(a.size(), 3333u);
  EXPECT_EQ(a, slice_positions(key, "model.layers.0.mlp.up_proj.weight", 1'000'000, 300));
  EXPECT_NE(a, slice_positions(key, "model.layers.1.mlp.up_proj.weight", 1'000'000, 300));
  for (size_t i = 1; i < a.size(); ++i) EXPECT_LT(a[i - 1], a[i]);
  EXPECT_GE(a.front(), 0);
  EXPECT_LT(a.back(), 1'000'000);
  EXPECT_EQ(slice_positions(key, "tiny", 5, 300).size(), 1u);  // max(1, n / compression)
  const uint8_t other[32] = {9, 9, 8};
  EXPECT_NE(a, slice_positions(slice_key(12, other), "model.layers.0.mlp.up_proj.weight", 1'000'000,
                               300));
}

TEST(Slices, EveryPositionIsEquallyLikely) {
  std::vector<int> hits(1000);
  for (uint64_t w = 0; w < 3000; ++w) {
    const uint8_t h[1] = {static_cast<uint8_t>(w)};
    for (int64_t p : slice_positions(slice_key(w, h), "t", 1000, 10)) hits[p]++;
  }
  // 3000 windows x 100 positions over 1000 elements: 300 expected each.
  for (int h : hits) {
    EXPECT_GT(h, 200);
    EXPECT_LT(h, 400);
  }
}

// ---- wire format

struct Fixture {
  LlamaConfig config = preset("tiny");
  std::unique_ptr<Signer> signer = ed25519_signer({1, 2, 3});
  UpdateExpectation expect(const std::string& codec) const {
    UpdateExpectation e;
    e.codec = codec;
    e.k = codec == "slice" ? 300 : 32;
    e.window = 77;
    e.uid = 4;
    e.hotkey = to_hex(signer->public_key());
    e.config_hash = config_hash(config);
    e.params = parameter_specs(config);
    return e;
  }
  Update make(const std::string& codec) const {
    const auto e = expect(codec);
    Update u;
    u.codec = codec;
    u.k = e.k;
    u.window = e.window;
    u.uid = e.uid;
    u.config_hash = e.config_hash;
    rng::Stream s(5);
    for (const auto& p : e.params) {
      const auto l = tensor_layout(codec, e.k, 64, p.shape);
      UpdateTensor t;
      t.name = p.name;
      t.rows = l.rows;
      t.k = l.k;
      for (int64_t r = 0; r < l.rows; ++r) {
        for (int64_t j = 0; j < l.k; ++j) {
          if (codec == "dct-topk") t.idx.push_back(static_cast<int32_t>(j * (l.chunk_size / l.k)));
          t.val.push_back(static_cast<float>(s.uniform() - 0.5));
        }
      }
      u.tensors.push_back(std::move(t));
    }
    return u;
  }
};

Reject reason_of(const std::string& bytes, const UpdateExpectation& e) {
  try {
    decode_update(bytes, e, "peer");
  } catch (const UpdateError& err) {
    return err.reason();
  }
  ADD_FAILURE() << "accepted";
  return Reject::Malformed;
}

TEST(UpdateFormat, Sr25519SignedUpdatesVerify) {
  Fixture f;
  f.signer = sr25519_signer({4, 5, 6});
  const auto bytes = encode_update(f.make("slice"), *f.signer);
  EXPECT_NO_THROW(decode_update(bytes, f.expect("slice"), "peer"));
  auto tampered = bytes;
  tampered[tampered.size() - 1] ^= 1;
  EXPECT_EQ(reason_of(tampered, f.expect("slice")), Reject::BadSignature);
}

TEST(UpdateFormat, RoundTripsBothCodecs) {
  Fixture f;
  for (const std::string codec : {"dct-topk", "slice"}) {
    const auto u = f.make(codec);
    const auto bytes = encode_update(u, *f.signer);
    EXPECT_LE(bytes.size(), max_update_bytes(f.expect(codec)));
    const auto d = decode_update(bytes, f.expect(codec), "peer");
    ASSERT_EQ(d.tensors.size(), u.tensors.size());
    for (size_t i = 0; i < u.tensors.size(); ++i) {
      EXPECT_EQ(d.tensors[i].idx, u.tensors[i].idx);
      EXPECT_EQ(d.tensors[i].val, u.tensors[i].val);
    }
    EXPECT_EQ(d.hotkey, to_hex(f.signer->public_key()));
  }
}

TEST(UpdateFormat, PackedIndicesAndQuantisedValues) {
  Fixture f;
  const auto plain = f.make("dct-topk");
  const auto plain_bytes = encode_update(plain, *f.signer).size();
  for (int vbits : {8, 2}) {
    auto u = plain;
    u.value_bits = vbits;
    u.index_bits = 12;
    // Make indices span the whole 12-bit range.
    u.tensors[0].idx[0] = 4095;
    auto e = f.expect("dct-topk");
    e.value_bits = vbits;
    e.index_bits = 12;
    const auto bytes = encode_update(u, *f.signer);
    EXPECT_LE(bytes.size(), max_update_bytes(e));
    const auto d = decode_update(bytes, e, "peer");
    for (size_t i = 0; i < u.tensors.size(); ++i) {
      EXPECT_EQ(d.tensors[i].idx, u.tensors[i].idx);  // 12-bit packing is exact
      float scale = 0;
      const auto expect = quantize_roundtrip(u.tensors[i].val, vbits, &scale);
      EXPECT_EQ(d.tensors[i].val, expect);
      for (size_t j = 0; j < expect.size(); ++j) {
        if (vbits == 8) {
          EXPECT_LE(std::fabs(expect[j] - u.tensors[i].val[j]), scale / 2 + 1e-7f);
        } else {  // one of four levels, on the right side of zero
          EXPECT_EQ(std::signbit(expect[j]), std::signbit(u.tensors[i].val[j]));
        }
      }
    }
    // Payload: 12-bit indices + 8-bit values are 3.2x smaller than int32 + fp32, 2-bit 4.6x; the
    // header (per-tensor names, shapes, scales) is a large share of a `tiny` update.
    EXPECT_LT(bytes.size() * (vbits == 8 ? 2.6 : 3.6), plain_bytes) << vbits;
    // A reader expecting another format refuses it.
    EXPECT_EQ(reason_of(bytes, f.expect("dct-topk")), Reject::WrongCodec);
  }
  // Slices carry weights: they are never quantised.
  auto s = f.make("slice");
  s.value_bits = 8;
  EXPECT_THROW(encode_update(s, *f.signer), Error);
}

TEST(UpdateFormat, SliceUpdatesAreAboutThreeHundredTimesSmaller) {
  Fixture f;
  const auto bytes = encode_update(f.make("slice"), *f.signer);
  const double full = f.config.parameter_count() * 4.0;
  EXPECT_GT(full / bytes.size(), 250.0);
}

TEST(UpdateFormat, RejectsEachProblemWithItsReason) {
  Fixture f;
  const auto e = f.expect("dct-topk");
  const auto good = encode_update(f.make("dct-topk"), *f.signer);

  auto other = e;
  other.window = 78;
  EXPECT_EQ(reason_of(good, other), Reject::WrongWindow);
  other = e;
  other.uid = 5;
  EXPECT_EQ(reason_of(good, other), Reject::WrongUid);
  other = e;
  other.hotkey = to_hex(ed25519_signer({7})->public_key());
  EXPECT_EQ(reason_of(good, other), Reject::WrongHotkey);
  other = e;
  other.config_hash = config_hash(preset("small"));
  EXPECT_EQ(reason_of(good, other), Reject::WrongConfig);
  other = e;
  other.k = 64;  // (a smaller k would lower the size limit and fail that check first)
  EXPECT_EQ(reason_of(good, other), Reject::WrongCodec);
  EXPECT_EQ(reason_of(good.substr(0, good.size() - 10), e), Reject::Malformed);
  EXPECT_EQ(reason_of(good + std::string(max_update_bytes(e), 'x'), e), Reject::TooLarge);

  // A flipped payload byte breaks the signature.
  auto tampered = good;
  tampered[tampered.size() - 3] ^= 0x40;
  EXPECT_EQ(reason_of(tampered, e), Reject::BadSignature);
  // Signed by someone else, claiming the expected hotkey.
  auto forged = encode_update(f.make("dct-topk"), *ed25519_signer({9}));
  const auto real = to_hex(f.signer->public_key()),
             fake = to_hex(ed25519_signer({9})->public_key());
  forged.replace(forged.find(fake), fake.size(), real);
  EXPECT_EQ(reason_of(forged, e), Reject::BadSignature);

  auto edit = [&](auto&& change) {
    auto u = f.make("dct-topk");
    change(u);
    return encode_update(u, *f.signer);
  };
  EXPECT_EQ(reason_of(edit([](Update& u) { u.tensors[0].idx[3] = 4096; }), e),
            Reject::IndexOutOfRange);
  EXPECT_EQ(reason_of(edit([](Update& u) { u.tensors[0].idx[3] = u.tensors[0].idx[2]; }), e),
            Reject::DuplicateIndex);
  EXPECT_EQ(reason_of(edit([](Update& u) { u.tensors[1].val[0] = NAN; }), e), Reject::NonFinite);
  EXPECT_EQ(reason_of(edit([](Update& u) { u.tensors[1].val[0] = INFINITY; }), e),
            Reject::NonFinite);
  EXPECT_EQ(reason_of(edit([](Update& u) { u.tensors[1].val[0] = 1e9f; }), e),
            Reject::ValueTooLarge);
  EXPECT_EQ(reason_of(edit([](Update& u) { u.tensors.pop_back(); }), e), Reject::MissingTensor);
  EXPECT_EQ(reason_of(edit([](Update& u) {
                        u.tensors.push_back(u.tensors.back());
                        u.tensors.back().name = "model.extra";
                      }),
                      e),
            Reject::ExtraTensor);
  EXPECT_EQ(reason_of(edit([](Update& u) {
                        u.tensors[0].rows -= 1;
                        u.tensors[0].idx.resize(u.tensors[0].rows * u.tensors[0].k);
                        u.tensors[0].val.resize(u.tensors[0].rows * u.tensors[0].k);
                      }),
                      e),
            Reject::BadShape);
}

// Random corruptions: every one is accepted or rejected with a reason; none crashes (ASan/UBSan
// in CI).
TEST(UpdateFormat, SurvivesRandomCorruption) {
  Fixture f;
  auto e = f.expect("dct-topk");
  const auto good = encode_update(f.make("dct-topk"), *f.signer);
  auto packed_update = f.make("dct-topk");
  packed_update.value_bits = 2;
  packed_update.index_bits = 12;
  const auto packed = encode_update(packed_update, *f.signer);
  auto e_packed = e;
  e_packed.value_bits = 2;
  e_packed.index_bits = 12;
  rng::Stream s(31);
  std::set<Reject> reasons;
  for (int trial = 0; trial < 600; ++trial) {
    const bool p = trial % 2 == 1;  // both wire layouts
    std::string b = p ? packed : good;
    e = p ? e_packed : f.expect("dct-topk");
    const int edits = 1 + static_cast<int>(s.below(3));
    for (int i = 0; i < edits; ++i) {
      // Half the edits land in the header, where the structure lives.
      const auto pos = s.below(2) ? s.below(std::min<uint64_t>(b.size(), 4096)) : s.below(b.size());
      b[pos] = static_cast<char>(s.below(256));
    }
    try {
      decode_update(b, e, "fuzz");
    } catch (const UpdateError& err) {
      reasons.insert(err.reason());
    }
  }
  EXPECT_GE(reasons.size(), 2u);
  EXPECT_TRUE(reasons.count(Reject::BadSignature) || reasons.count(Reject::Malformed));
}

TEST(Signer, Ed25519SignsAndVerifies) {
  auto s = ed25519_signer({42});
  const std::string msg = "hello bittensor";
  const auto span = std::span(reinterpret_cast<const uint8_t*>(msg.data()), msg.size());
  const auto sig = s->sign(span);
  EXPECT_TRUE(verify_signature("ed25519", s->public_key(), span, sig));
  auto bad = sig;
  bad[0] ^= 1;
  EXPECT_FALSE(verify_signature("ed25519", s->public_key(), span, bad));
  EXPECT_FALSE(verify_signature("sr25519", s->public_key(), span, sig));  // wrong scheme
  EXPECT_FALSE(verify_signature("rsa", s->public_key(), span, sig));      // unknown scheme
  // RFC 8032, section 7.1, test 1 (empty message).
  const auto rfc = ed25519_signer(
      from_hex<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "seed"));
  EXPECT_EQ(to_hex(rfc->public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  EXPECT_EQ(to_hex(rfc->sign({})),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
            "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
}

}  // namespace
}  // namespace bistro
