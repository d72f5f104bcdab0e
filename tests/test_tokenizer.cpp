#include "bistro/data/tokenizer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/model/hf_tokenizer.hpp"

namespace bistro {
namespace {
namespace fs = std::filesystem;

const Tokenizer& bundled() {
  static const Tokenizer t(default_tokenizer_path());
  return t;
}

std::vector<std::string> tricky_texts() {
  return {"Hello world",
          "  leading and trailing spaces  ",
          "multiple   inner    spaces",
          "caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac 42 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
          "digits 1234567890 and 3.14159",
          "Abdication \\Ab`di*ca\"tion\\, n. [L. abdicatio: cf. F. abdication.]",
          "x",
          "\xe2\x96\x81 literal visible space",
          "tab\there"};
}

TEST(Tokenizer, BundledModelLoads) {
  const auto& t = bundled();
  EXPECT_EQ(t.vocab_size(), 8192);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.unk_id(), 0);
}

TEST(Tokenizer, RoundTrips) {
  for (const auto& s : tricky_texts()) {
    // A literal U+2581 is SentencePiece's escaped space: it decodes as ' ', as in spm_decode.
    if (s.find("\xe2\x96\x81") != std::string::npos) continue;
    EXPECT_EQ(bundled().decode(bundled().encode(s)), s);
  }
  EXPECT_TRUE(bundled().encode("").empty());
}

TEST(Tokenizer, DocumentsCarryBosAndEosAndTruncate) {
  const auto& t = bundled();
  const auto doc = t.encode_document("Hello world, this is a document.", 1000);
  EXPECT_EQ(doc.front(), 1);
  EXPECT_EQ(doc.back(), 2);
  EXPECT_EQ(std::vector<int32_t>(doc.begin() + 1, doc.end() - 1),
            t.encode("Hello world, this is a document."));
  const auto cut = t.encode_document("Hello world, this is a document.", 4);
  EXPECT_EQ(cut.size(), 4u);
  EXPECT_EQ(cut.back(), 2);
}

// SentencePiece's own encoder is the reference: the same ids for corpus documents and edge cases.
TEST(Tokenizer, MatchesSpmEncode) {
  const fs::path dir = fs::temp_directory_path() / ("bistro_tok_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<std::string> texts = tricky_texts();
  {
    // A spread of corpus text: fortunes from the Debian package.
    CorpusSources src;
    std::string text;
    for (const auto& e : fs::directory_iterator(src.fortunes)) {
      if (e.path().filename() == "fortunes") text = read_file(e.path());
    }
    auto fortunes = fortune_entries(text);
    for (size_t i = 0; i < fortunes.size() && i < 1500; ++i) texts.push_back(fortunes[i]);
  }
  for (auto& s : texts) {
    for (auto& c : s) {
      if (c == '\n' || c == '\t') c = ' ';  // spm_encode reads one sentence per line
    }
  }
  {
    std::string all;
    for (const auto& s : texts) all += s + "\n";
    write_file_atomic(dir / "in.txt", all);
  }
  const std::string cmd = "spm_encode --model=" + default_tokenizer_path().string() +
                          " --output_format=id < " + (dir / "in.txt").string() + " > " +
                          (dir / "out.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::istringstream lines(read_file(dir / "out.txt"));
  std::string line;
  size_t i = 0, mismatches = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(i, texts.size());
    std::vector<int32_t> expected;
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) expected.push_back(id);
    const auto got = bundled().encode(texts[i]);
    if (got != expected && mismatches++ < 5) ADD_FAILURE() << "text #" << i << ": " << texts[i];
    ++i;
  }
  EXPECT_EQ(i, texts.size());
  EXPECT_EQ(mismatches, 0u);
  fs::remove_all(dir);
}

TEST(Tokenizer, RejectsBadModels) {
  EXPECT_THROW(Tokenizer("/nonexistent/tokenizer.model"), Error);
  const auto bytes = read_file(default_tokenizer_path());
  EXPECT_THROW(Tokenizer::from_bytes(bytes.substr(0, bytes.size() / 3), "cut.model"), Error);
  EXPECT_THROW(Tokenizer::from_bytes("", "empty.model"), Error);
  // A unigram model (TrainerSpec.model_type = 1) is named as unsupported.
  // ModelProto{pieces: [{piece: "a"}], trainer_spec: {model_type: UNIGRAM}}
  const std::string unigram("\x0a\x03\x0a\x01\x61\x12\x02\x18\x01", 9);
  try {
    Tokenizer::from_bytes(unigram, "unigram.model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model type 1 is not supported"), std::string::npos)
        << e.what();
  }
}

TEST(Tokenizer, SurvivesRandomCorruption) {
  const auto good = read_file(default_tokenizer_path());
  rng::Stream s(77);
  int loaded = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::string f = good;
    for (int e = 0; e < 8; ++e) f[s.below(f.size())] = static_cast<char>(s.below(256));
    try {
      auto t = Tokenizer::from_bytes(f, "fuzz");
      for (int32_t id : t.encode("some text to encode, caf\xc3\xa9")) {
        ASSERT_GE(id, 0);
        ASSERT_LT(id, t.vocab_size());
      }
      ++loaded;
    } catch (const Error&) {
    }
  }
  EXPECT_LT(loaded, 200);  // most corruptions are caught
}

}  // namespace
}  // namespace bistro

namespace bistro {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(HfTokenizer, WritesTheFilesTransformersReadsAndNamesBadOnes) {
  const auto dir = fs::temp_directory_path() / ("bistro_hf_tok_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // A checkpoint without tokenizer files is named, with the file it lacks.
  auto e = error_of([&] { checkpoint_tokenizer(dir, 8192); });
  EXPECT_NE(e.find(dir.string()), std::string::npos) << e;
  EXPECT_NE(e.find("no tokenizer files (tokenizer.model is missing"), std::string::npos) << e;
  // A tokenizer with more pieces than the model has rows.
  e = error_of([&] { write_hf_tokenizer(dir, default_tokenizer_path(), 4096); });
  EXPECT_NE(e.find("the tokenizer has 8192 pieces but the model's vocab_size is 4096"),
            std::string::npos)
      << e;
  write_hf_tokenizer(dir, default_tokenizer_path(), 8192);
  EXPECT_EQ(read_file(dir / kTokenizerFile), read_file(default_tokenizer_path()));
  const auto config = nlohmann::json::parse(read_file(dir / "tokenizer_config.json"));
  EXPECT_EQ(config["bos_token"], "<s>");
  EXPECT_EQ(config["eos_token"], "</s>");
  EXPECT_EQ(config["unk_token"], "<unk>");
  EXPECT_EQ(config["legacy"], true);
  EXPECT_EQ(nlohmann::json::parse(read_file(dir / "special_tokens_map.json"))["bos_token"], "<s>");
  EXPECT_EQ(checkpoint_tokenizer(dir, 8192).encode("hello"), bundled().encode("hello"));
  e = error_of([&] { checkpoint_tokenizer(dir, 1000); });
  EXPECT_NE(e.find("checkpoint " + dir.string() + ": the tokenizer has 8192 pieces"),
            std::string::npos)
      << e;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bistro
