// The subtensor client against an in-process JSON-RPC node that answers with SCALE built from the
// spec: reads (block, hashes, hyperparameters, metagraph, commitments), signed writes checked by
// the node, dispatch errors by name, a rejected extrinsic, and a dropped connection.
#include <gtest/gtest.h>

#include <chrono>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "bistro/chain/subtensor_chain.hpp"
#include "bistro/chain/timelocked_weights.hpp"
#include "bistro/drand/timelock.hpp"
#include "bistro/identity/sr25519.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/substrate/websocket.hpp"
#include "substrate_node.hpp"
#include "test_util.hpp"

using namespace bistro;
using namespace bistro::chain;
using namespace bistro::substrate;

namespace {
std::unique_ptr<Signer> key(uint8_t n) {
  std::array<uint8_t, 32> mini{};
  mini[0] = n;
  mini[9] = 0x42;
  return sr25519_signer(mini);
}
// How many extrinsics `f` made the node receive.
template <class F>
size_t extrinsics_sent(test::SubstrateNode& node, F f) {
  const size_t before = node.submitted();
  f();
  return node.submitted() - before;
}
SubtensorOptions fast() {
  SubtensorOptions o;
  o.poll_s = 0.01;
  o.inclusion_timeout_s = 5;
  o.rpc.backoff_s = 0.1;
  o.reveals_dir = std::filesystem::path();  // unrevealed commits in memory
  return o;
}
}  // namespace

TEST(Subtensor, NetworkNames) {
  EXPECT_EQ(network_url("ws://127.0.0.1:9944"), "ws://127.0.0.1:9944");
  EXPECT_EQ(network_url("https://node.example:443"), "https://node.example:443");
  EXPECT_EQ(network_url("local"), "ws://127.0.0.1:9944");
  EXPECT_EQ(network_url("finney").rfind("wss://", 0), 0u);
  EXPECT_THROW(network_url("mainnet"), Error);
}

class SubtensorTransports : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Subtensor, SubtensorTransports, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "WebSocket" : "Http"; });

TEST_P(SubtensorTransports, RegisterCommitSetWeightsAndReadBack) {
  test::SubstrateNode node;
  SubtensorChain c(GetParam() ? node.ws_url() : node.url(), fast());
  EXPECT_EQ(c.block(), 0u);
  EXPECT_EQ(c.hyperparameters(1).tempo, 99);
  EXPECT_EQ(c.hyperparameters(1).weights_rate_limit, 7u);
  EXPECT_EQ(test::chain_error_name([&] { c.hyperparameters(5); }), "SubnetNotExists");

  auto cold = key(1), hot = key(2), other = key(3);
  const std::string hk = ss58_encode(hot->public_key());
  EXPECT_EQ(c.register_neuron(1, *cold, hk), 0);
  EXPECT_EQ(c.register_neuron(1, *cold, hk), 0);  // already registered: no new extrinsic
  EXPECT_EQ(node.submitted(), 1u);
  Metagraph m = c.metagraph(1);
  ASSERT_EQ(m.neurons.size(), 1u);
  EXPECT_EQ(m.neurons[0].hotkey, hk);
  EXPECT_EQ(m.neurons[0].coldkey, ss58_encode(cold->public_key()));
  EXPECT_EQ(m.neurons[0].block_at_registration, 1u);

  c.set_commitment(1, *hot, std::string(200, 'b') + "-bucket");  // two Raw fields
  auto commits = c.commitments(1);
  ASSERT_EQ(commits.size(), 1u);
  EXPECT_EQ(commits[hk], std::string(200, 'b') + "-bucket");

  c.set_weights(1, *hot, {0}, {65535}, 0);
  EXPECT_EQ(test::chain_error_name([&] { c.set_weights(1, *other, {0}, {65535}, 0); }),
            "HotKeyNotRegisteredInSubNet");
  node.fail_next("SettingWeightsTooFast");
  EXPECT_EQ(test::chain_error_name([&] { c.set_weights(1, *hot, {0}, {65535}, 0); }),
            "SettingWeightsTooFast");
  node.reject_next("Transaction has a bad signature");
  EXPECT_EQ(test::chain_error_name([&] { c.set_weights(1, *hot, {0}, {65535}, 0); }),
            "InvalidTransaction");
}

TEST(Subtensor, SecondsPerBlockComeFromTheChainsTimestamps) {
  test::SubstrateNode node;
  node.set_block_ms(2500);
  SubtensorChain c(node.url(), fast());
  EXPECT_EQ(c.seconds_per_block(), 12.0);  // one block: nothing to measure yet (Bittensor's 12)
  auto cold = key(1);
  for (uint8_t i = 0; i < 3; ++i)  // one block each
    c.register_neuron(1, *cold, ss58_encode(key(static_cast<uint8_t>(10 + i))->public_key()));
  SubtensorChain fresh(node.url(), fast());  // (the first one keeps its reading for a minute)
  EXPECT_NEAR(fresh.seconds_per_block(), 2.5, 1e-9);
  EXPECT_NEAR(fresh.seconds_until(fresh.block() + 2), 3.75, 1e-9);  // from the middle of a block
}

TEST(Subtensor, SurvivesADroppedConnection) {
  test::SubstrateNode node;
  SubtensorChain c(node.url(), fast());
  node.drop_connection_for(300);
  EXPECT_EQ(c.block(), 0u);  // retried until the node answered again
  SubtensorChain ws(node.ws_url(), fast());
  EXPECT_EQ(ws.block(), 0u);
  node.drop_websockets();  // the open connection dies; the client reconnects
  EXPECT_EQ(ws.block(), 0u);
  EXPECT_EQ(ws.hyperparameters(1).tempo, 99);
}

// Hash commit-reveal on a runtime that counts epochs (spec 423 on): the node applies subtensor's
// rules (a reveal only in the commit's stored epoch + RevealPeriodEpochs, the epoch firing in
// the reveal's block counted), and bistro sends a reveal only when the chain will take it: none
// too early, none for an expired commit (dropped unsent), one in an epoch's firing block.
TEST(Subtensor, HashRevealsGoOutOnlyInTheEpochTheChainExpects) {
  using N = test::SubstrateNode;
  N node;
  node.set_plain("SubtensorModule", "CommitRevealWeightsEnabled", {N::u16(1)}, "\1");
  node.set_plain("SubtensorModule", "LastEpochBlock", {N::u16(1)}, N::u64(1000));  // none fires
  node.set_plain("SubtensorModule", "SubnetEpochIndex", {N::u16(1)}, N::u64(5));
  SubtensorChain c(node.url(), fast());
  auto cold = key(1), hot = key(2);
  c.register_neuron(1, *cold, ss58_encode(hot->public_key()));
  auto sent = [&](auto f) { return extrinsics_sent(node, f); };
  EXPECT_EQ(sent([&] { c.set_weights(1, *hot, {0}, {65535}, 3); }), 1u);  // commit 1, epoch 5
  EXPECT_EQ(sent([&] { c.set_weights(1, *hot, {0}, {1000}, 3); }), 1u);  // reveal too early: unsent
  EXPECT_TRUE(node.revealed().empty());
  node.set_plain("SubtensorModule", "SubnetEpochIndex", {N::u16(1)}, N::u64(6));
  EXPECT_EQ(sent([&] { c.set_weights(1, *hot, {0}, {2000}, 3); }), 3u);  // reveals 1, 2; commit 3
  auto revealed = node.revealed();  // the node accepted them: each matched its hash and epoch
  ASSERT_EQ(revealed.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    scale::Reader r(revealed[k], "reveal");
    EXPECT_EQ(r.u16(), 1);
    EXPECT_EQ(r.length(), 1u);
    EXPECT_EQ(r.u16(), 0);
    EXPECT_EQ(r.length(), 1u);
    EXPECT_EQ(r.u16(), k == 0 ? 65535 : 1000);  // the committed weights, in commit order
  }
  // Two epochs on, commit 3 (epoch 6) has expired: dropped without a failing extrinsic.
  node.set_plain("SubtensorModule", "SubnetEpochIndex", {N::u16(1)}, N::u64(8));
  EXPECT_EQ(sent([&] { c.set_weights(1, *hot, {0}, {3000}, 3); }), 1u);  // commit 4, epoch 8
  EXPECT_EQ(node.revealed().size(), 2u);
  // An epoch fires in the next block (tempo 99 after LastEpochBlock): the reveal sent now lands
  // in epoch 9, commit 4's reveal epoch, though SubnetEpochIndex still reads 8.
  node.advance(150);
  node.set_plain("SubtensorModule", "LastEpochBlock", {N::u16(1)}, N::u64(node.head() + 1 - 99));
  EXPECT_EQ(sent([&] { c.set_weights(1, *hot, {0}, {4000}, 3); }), 2u);
  revealed = node.revealed();
  ASSERT_EQ(revealed.size(), 3u);
  scale::Reader r(revealed[2], "reveal");
  r.u16(), r.length(), r.u16(), r.length();
  EXPECT_EQ(r.u16(), 3000);
}

// Before spec 423 the epoch is (block + netuid + 1) / (tempo + 1) and each commit stores its
// block: bistro reveals in the next epoch's blocks, and drops a commit whose epoch has passed.
TEST(Subtensor, HashRevealsFollowTheBlockRuleBeforeSpec423) {
  using N = test::SubstrateNode;
  N node(14, /*epoch_counter=*/false);
  node.set_plain("SubtensorModule", "CommitRevealWeightsEnabled", {N::u16(1)}, "\1");
  SubtensorChain c(node.url(), fast());
  auto cold = key(1), hot = key(2);
  c.register_neuron(1, *cold, ss58_encode(hot->public_key()));
  auto sent = [&](auto f) { return extrinsics_sent(node, f); };
  EXPECT_EQ(sent([&] { c.set_weights(1, *hot, {0}, {1}, 3); }), 1u);  // commit at block 2, epoch 0
  node.advance(95 - node.head());  // head 95: the next block, 96, is still epoch 0
  EXPECT_EQ(sent([&] { c.set_weights(1, *hot, {0}, {2}, 3); }), 1u);  // too early; commit (96)
  node.advance(97 - node.head());  // the next block, 98, is epoch 1: (98 + 2) / 100
  EXPECT_EQ(sent([&] { c.set_weights(1, *hot, {0}, {3}, 3); }), 3u);  // two reveals, a commit
  EXPECT_EQ(node.revealed().size(), 2u);
  node.advance(300 - node.head());  // epoch 3: the commit of epoch 1 expired in epoch 2
  EXPECT_EQ(sent([&] { c.set_weights(1, *hot, {0}, {4}, 3); }), 1u);
  EXPECT_EQ(node.revealed().size(), 2u);
}

// With timelocked commit-reveal (version 4) the weights go out as one commit_timelocked_weights:
// encrypted to the drand round just after the chain's reveal block for them (from the runtime's
// epoch bookkeeping), which the chain reveals itself. A version bistro cannot encode is refused.
TEST(Subtensor, TimelockedCommitRevealCommitsToTheRevealRound) {
  test::SubstrateNode node;
  node.set_plain("SubtensorModule", "CommitRevealWeightsEnabled", {test::SubstrateNode::u16(1)},
                 std::string(1, '\1'));
  node.set_plain("SubtensorModule", "CommitRevealWeightsVersion", {}, test::SubstrateNode::u16(4));
  SubtensorChain c(node.url(), fast());
  auto cold = key(1), hot = key(2);
  c.register_neuron(1, *cold, ss58_encode(hot->public_key()));
  const double spb = c.seconds_per_block();  // as the commit reads it (cached for a minute)
  const uint64_t head = c.block();
  const double before =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  c.set_weights(1, *hot, {0}, {65535}, 3);
  const auto sent = node.timelocked();
  ASSERT_EQ(sent.size(), 1u);
  scale::Reader r(sent[0], "commit_timelocked_weights");
  EXPECT_EQ(r.u16(), 1);
  const std::string commit(r.raw(r.length()));
  const uint64_t round = r.u64();
  EXPECT_EQ(r.u16(), 4);  // commit_reveal_version
  EXPECT_TRUE(r.done());
  EXPECT_GT(commit.size(), 200u);
  EXPECT_LE(commit.size(), kMaxTimelockedCommitBytes);
  // Tempo 99, no epoch yet (index 0, the last at block 0): the commit is in epoch 0, epoch 1
  // fires at block 99, where reveal period 1 has the chain reveal it; the round is block 102's
  // at the chain's block time, from now.
  const uint64_t expect = reveal_round(99, head, spb, before);
  EXPECT_GE(round, expect);
  EXPECT_LE(round, expect + 2);          // the seconds this test took
  EXPECT_TRUE(node.revealed().empty());  // nothing to reveal later: the chain does it

  // A round the chain already holds a pulse for would be revealed at once: refused by name.
  node.set_plain("Drand", "LastStoredRound", {}, scale::Writer().u64(uint64_t{1} << 40).take());
  EXPECT_EQ(test::chain_error_name([&] { c.set_weights(1, *hot, {0}, {1}, 0); }),
            "RevealRoundInPast");
  EXPECT_EQ(node.timelocked().size(), 1u);  // nothing was sent
  node.set_plain("SubtensorModule", "CommitRevealWeightsVersion", {}, test::SubstrateNode::u16(5));
  EXPECT_EQ(test::chain_error_name([&] { c.set_weights(1, *hot, {0}, {1}, 0); }),
            "CommitRevealNotSupported");
}

// BISTRO_TEST_TIMELOCK (for tests against a real runtime) sends a commit of the version it names,
// aimed at its round, so that a known round's signature opens it; a malformed value is refused.
TEST(Subtensor, TestTimelockSettingAimsACommitAtAKnownRound) {
  test::SubstrateNode node;
  node.set_plain("SubtensorModule", "CommitRevealWeightsEnabled", {test::SubstrateNode::u16(1)},
                 "\1");
  SubtensorChain c(node.url(), fast());
  auto cold = key(1), hot = key(2);
  c.register_neuron(1, *cold, ss58_encode(hot->public_key()));
  test::ScopedEnv env("BISTRO_TEST_TIMELOCK", "3@1000");
  c.set_weights(1, *hot, {0}, {65535}, 7);  // the runtime asks for version 2: hash commits
  const auto sent = node.timelocked();
  ASSERT_EQ(sent.size(), 1u);
  scale::Reader r(sent[0], "commit_crv3_weights");
  EXPECT_EQ(r.u16(), 1);
  const std::string commit(r.raw(r.length()));
  EXPECT_EQ(r.u64(), 1000u);
  EXPECT_TRUE(r.done());  // version 3 has no version field
  const std::string sig = scale::from_hex(
      "0xb44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63"
      "ed5e39",
      "signature");
  EXPECT_EQ(drand::timelock_decrypt(commit, sig),
            chain::timelocked_weights_payload(hot->public_key(), {0}, {65535}, 7, 3));
  test::ScopedEnv bad("BISTRO_TEST_TIMELOCK", "5@1000");
  EXPECT_NE(test::error_of([&] { c.set_weights(1, *hot, {0}, {1}, 7); }).find("VERSION@ROUND"),
            std::string::npos);
}

TEST(Subtensor, UnreachableNodeAndBadMetadataFailClearly) {
  SubtensorOptions o = fast();
  o.rpc.attempts = 2;
  try {
    SubtensorChain c("http://127.0.0.1:1", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unreachable"), std::string::npos) << e.what();
  }
}

TEST(Subtensor, MetagraphThroughNeuronInfoRuntimeApiOnV15) {
  test::SubstrateNode node(15);
  SubtensorChain c(node.url(), fast());
  EXPECT_EQ(c.metadata().version(), 15);
  const Hyperparameters h = c.hyperparameters(1);  // through SubnetInfoRuntimeApi
  EXPECT_EQ(h.tempo, 33);
  EXPECT_EQ(h.kappa, 12345);
  EXPECT_EQ(h.weights_rate_limit, 77u);
  auto cold = key(1);
  for (uint8_t i = 2; i < 5; ++i) c.register_neuron(1, *cold, ss58_encode(key(i)->public_key()));
  Metagraph m = c.metagraph(1);
  ASSERT_EQ(m.neurons.size(), 3u);
  for (uint16_t uid = 0; uid < 3; ++uid) {
    EXPECT_EQ(m.neurons[uid].uid, uid);
    EXPECT_EQ(m.neurons[uid].hotkey, ss58_encode(key(static_cast<uint8_t>(uid + 2))->public_key()));
    EXPECT_EQ(m.neurons[uid].coldkey, ss58_encode(cold->public_key()));
    EXPECT_EQ(m.neurons[uid].stake, 5'000'000'000ull + uid);  // values only the runtime API carries
    EXPECT_EQ(m.neurons[uid].emission, 123u + uid);
    EXPECT_EQ(m.neurons[uid].incentive, 7);
    EXPECT_EQ(m.neurons[uid].last_update, 42u);
    EXPECT_TRUE(m.neurons[uid].validator_permit);
    EXPECT_EQ(m.neurons[uid].block_at_registration, uid + 1u);  // from storage
  }
}

namespace {
// A one-connection WebSocket server that answers the upgrade (correctly or not) and then sends
// `frame` raw bytes, to check how the client treats a hostile node.
class RawWebSocketServer {
 public:
  RawWebSocketServer(bool good_accept, std::string frame) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 1);
    thread_ = std::thread([this, good_accept, frame] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string buf(4096, '\0'), head;
      while (head.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf.data(), buf.size());
        if (n <= 0) break;
        head.append(buf.data(), static_cast<size_t>(n));
      }
      const size_t k = head.find("Sec-WebSocket-Key: ");
      const std::string key = head.substr(k + 19, head.find("\r\n", k) - k - 19);
      const std::string reply =
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
          "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
          (good_accept ? websocket_accept(key) : "bm90IHRoZSByaWdodCBrZXk=") + "\r\n\r\n" + frame;
      if (::write(c, reply.data(), reply.size()) < 0) return;
      ::read(c, buf.data(), buf.size());  // until the client hangs up
      close(c);
    });
  }
  ~RawWebSocketServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1, port_ = 0;
  std::thread thread_;
};
}  // namespace

TEST(WebSocket, HostileNodesAreRefusedWithAReason) {
  auto message_of = [](bool good_accept, std::string frame) {
    RawWebSocketServer s(good_accept, std::move(frame));
    return test::error_of([&] { WebSocket(s.url(), 2).receive(); });
  };
  EXPECT_NE(message_of(false, "").find("wrong Sec-WebSocket-Accept"), std::string::npos);
  EXPECT_NE(message_of(true, std::string("\x83\x00", 2)).find("unknown frame opcode 3"),
            std::string::npos);
  // A 64-bit length of 2^40 bytes: refused before any allocation.
  EXPECT_NE(message_of(true, std::string("\x81\x7f\x00\x00\x01\x00\x00\x00\x00\x00", 10))
                .find("too large"),
            std::string::npos);
  EXPECT_NE(message_of(true, std::string("\x88\x00", 2)).find("closed the connection"),
            std::string::npos);
  // A well-formed text frame is delivered.
  RawWebSocketServer ok(true, std::string("\x81\x02hi", 4));
  EXPECT_EQ(WebSocket(ok.url(), 2).receive(), "hi");
}

// Mechanisms (spec 320 on): a mechanism the subnet lacks is refused by name before anything is
// sent; a selected one gets the mechanism variants of the weights calls, and its hash commits are
// made over its storage index (netuid + 4096 * mecid), which the node checks when they are
// revealed.
TEST(Subtensor, MechanismsGetTheirOwnWeightsCalls) {
  test::SubstrateNode node;
  SubtensorChain c(node.url(), fast());
  auto cold = key(1), hot = key(2);
  c.register_neuron(1, *cold, ss58_encode(hot->public_key()));
  EXPECT_EQ(test::chain_error_name([&] { c.select_mechanism(1, 1); }), "MechanismDoesNotExist");
  EXPECT_EQ(c.mechanism(), 0);
  node.set_plain("SubtensorModule", "MechanismCountCurrent", {test::SubstrateNode::u16(1)},
                 std::string(1, '\2'));
  c.select_mechanism(1, 1);
  EXPECT_EQ(c.weights_index(1), 4097);
  const size_t before = node.submitted();
  c.set_weights(1, *hot, {0}, {65535}, 3);
  EXPECT_EQ(node.submitted(), before + 1);
  const auto sent = node.mechanism_weights();
  ASSERT_EQ(sent.size(), 1u);
  scale::Reader r(sent[0], "set_mechanism_weights");
  EXPECT_EQ(r.u16(), 1);
  EXPECT_EQ(r.u8(), 1);  // the mechanism
  EXPECT_EQ(r.length(), 1u);

  node.set_plain("SubtensorModule", "CommitRevealWeightsEnabled", {test::SubstrateNode::u16(1)},
                 std::string(1, '\1'));
  c.set_weights(1, *hot, {0}, {7}, 3);  // commit_mechanism_weights
  c.set_weights(1, *hot, {0}, {8}, 3);  // too early: kept; commits again
  node.set_plain("SubtensorModule", "SubnetEpochIndex", {test::SubstrateNode::u16(1)},
                 test::SubstrateNode::u64(1));
  c.set_weights(1, *hot, {0}, {9}, 3);  // both revealed: their hashes matched the index's
  const auto revealed = node.revealed();
  ASSERT_EQ(revealed.size(), 2u);
  EXPECT_EQ(revealed[0].substr(0, 2), test::SubstrateNode::u16(4097));
}
