#include "bistro/data/tokenizer.hpp"

#include <cstdlib>
#include <cstring>
#include <queue>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/data/dataset.hpp"

namespace bistro {
namespace fs = std::filesystem;

namespace {
constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's visible space
constexpr uint64_t kMaxModelBytes = 64ull << 20;

// Protocol-buffer wire format, just enough for sentencepiece_model.proto.
class WireReader {
 public:
  WireReader(std::string_view bytes, const std::string& origin) : s_(bytes), origin_(origin) {}
  bool done() const { return pos_ >= s_.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      check(pos_ < s_.size(), "{}: truncated varint", origin_);
      const auto b = static_cast<uint8_t>(s_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("{}: varint longer than 10 bytes", origin_);
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    check(n <= s_.size() - pos_, "{}: length {} runs past the end", origin_, n);
    auto out = s_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  float fixed32_float() {
    check(s_.size() - pos_ >= 4, "{}: truncated fixed32", origin_);
    float f;
    std::memcpy(&f, s_.data() + pos_, 4);
    pos_ += 4;
    return f;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case 0:
        varint();
        break;
      case 1:
        check(s_.size() - pos_ >= 8, "{}: truncated fixed64", origin_);
        pos_ += 8;
        break;
      case 2:
        bytes();
        break;
      case 5:
        check(s_.size() - pos_ >= 4, "{}: truncated fixed32", origin_);
        pos_ += 4;
        break;
      default:
        fail("{}: unsupported protobuf wire type {}", origin_, wire_type);
    }
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  const std::string& origin_;
};

size_t utf8_length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;  // a stray byte stands alone (and falls back to its byte piece)
}
}  // namespace

Tokenizer::Tokenizer(const fs::path& model) {
  check(fs::exists(model), "tokenizer {} does not exist", model.string());
  *this = from_bytes(read_file(model), model.string());
}

Tokenizer Tokenizer::from_bytes(std::string_view bytes, std::string origin) {
  Tokenizer t;
  t.origin_ = std::move(origin);
  const auto& O = t.origin_;
  check(bytes.size() <= kMaxModelBytes, "{}: {} bytes is too large for a tokenizer model", O,
        bytes.size());
  t.byte_ids_.fill(-1);
  int model_type = 1;  // UNIGRAM unless stated
  std::string normalizer = "nmt_nfkc";
  bool has_charsmap = false, remove_extra_whitespaces = true;
  WireReader top(bytes, O);
  while (!top.done()) {
    const uint64_t tag = top.varint();
    const int field = static_cast<int>(tag >> 3), wire = static_cast<int>(tag & 7);
    if (field == 1 && wire == 2) {  // SentencePiece piece
      WireReader r(top.bytes(), O);
      Piece p;
      while (!r.done()) {
        const uint64_t tg = r.varint();
        const int f = static_cast<int>(tg >> 3), w = static_cast<int>(tg & 7);
        if (f == 1 && w == 2)
          p.text = std::string(r.bytes());
        else if (f == 2 && w == 5)
          p.score = r.fixed32_float();
        else if (f == 3 && w == 0)
          p.type = static_cast<int>(r.varint());
        else
          r.skip(w);
      }
      t.pieces_.push_back(std::move(p));
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      WireReader r(top.bytes(), O);
      while (!r.done()) {
        const uint64_t tg = r.varint();
        const int f = static_cast<int>(tg >> 3), w = static_cast<int>(tg & 7);
        if (w != 0) {
          r.skip(w);
          continue;
        }
        const auto v = static_cast<int32_t>(r.varint());
        if (f == 3)
          model_type = v;
        else if (f == 35)
          t.byte_fallback_ = v != 0;
        else if (f == 40)
          t.unk_ = v;
        else if (f == 41)
          t.bos_ = v;
        else if (f == 42)
          t.eos_ = v;
      }
    } else if (field == 3 && wire == 2) {  // NormalizerSpec
      WireReader r(top.bytes(), O);
      while (!r.done()) {
        const uint64_t tg = r.varint();
        const int f = static_cast<int>(tg >> 3), w = static_cast<int>(tg & 7);
        if (f == 1 && w == 2)
          normalizer = std::string(r.bytes());
        else if (f == 2 && w == 2)
          has_charsmap = !r.bytes().empty();
        else if (f == 3 && w == 0)
          t.add_dummy_prefix_ = r.varint() != 0;
        else if (f == 4 && w == 0)
          remove_extra_whitespaces = r.varint() != 0;
        else if (f == 5 && w == 0)
          t.escape_whitespaces_ = r.varint() != 0;
        else
          r.skip(w);
      }
    } else {
      top.skip(wire);
    }
  }
  check(!t.pieces_.empty(), "{}: no pieces: not a SentencePiece model", O);
  check(model_type == 2, "{}: model type {} is not supported (only BPE, type 2)", O, model_type);
  check(!has_charsmap && !remove_extra_whitespaces,
        "{}: normaliser '{}' is not supported (only identity, without removing whitespace)", O,
        normalizer);
  const auto n = static_cast<int32_t>(t.pieces_.size());
  for (int32_t id : {t.unk_, t.bos_, t.eos_}) {
    check(id >= -1 && id < n, "{}: special id {} out of range for {} pieces", O, id, n);
  }
  for (int32_t i = 0; i < n; ++i) {
    const auto& p = t.pieces_[i];
    if (p.type == 1 || p.type == 4) {
      check(!p.text.empty(), "{}: piece {} is empty", O, i);
      t.mergeable_.emplace(p.text, i);
    } else if (p.type == 6) {
      unsigned v = 0;
      check(p.text.size() == 6 && std::sscanf(p.text.c_str(), "<0x%2X>", &v) == 1 && v < 256,
            "{}: byte piece {} is malformed: '{}'", O, i, p.text);
      t.byte_ids_[v] = i;
    }
  }
  return t;
}

const std::string& Tokenizer::piece(int32_t id) const {
  check(id >= 0 && id < vocab_size(), "{}: no piece {} (the model has {})", origin_, id,
        vocab_size());
  return pieces_[static_cast<size_t>(id)].text;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  if (text.empty()) return out;
  std::string s;
  s.reserve(text.size() + 8);
  if (add_dummy_prefix_) s += escape_whitespaces_ ? kSpace : " ";
  for (char c : text) {
    if (c == ' ' && escape_whitespaces_)
      s += kSpace;
    else
      s += c;
  }
  // Symbols: one per character, in a doubly linked list.
  struct Sym {
    size_t begin, len;
    int prev, next;
  };
  std::vector<Sym> syms;
  for (size_t i = 0; i < s.size();) {
    const size_t len = std::min(utf8_length(static_cast<unsigned char>(s[i])), s.size() - i);
    syms.push_back({i, len, static_cast<int>(syms.size()) - 1, static_cast<int>(syms.size()) + 1});
    i += len;
  }
  syms.back().next = -1;
  // Candidate merges by score, highest first; ties go to the leftmost pair.
  struct Cand {
    float score;
    int left, right;
    size_t len;  // total length when queued, to detect stale entries
    bool operator<(const Cand& o) const {
      return score < o.score || (score == o.score && left > o.left);
    }
  };
  std::priority_queue<Cand> queue;
  auto consider = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::string_view piece(s.data() + syms[l].begin, syms[l].len + syms[r].len);
    auto it = mergeable_.find(std::string(piece));
    if (it == mergeable_.end()) return;
    queue.push({pieces_[it->second].score, l, r, piece.size()});
  };
  for (size_t i = 0; i + 1 < syms.size(); ++i)
    consider(static_cast<int>(i), static_cast<int>(i) + 1);
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    Sym &l = syms[c.left], &r = syms[c.right];
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.len + r.len != c.len) continue;
    l.len += r.len;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    r.len = 0;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  for (int i = 0; i >= 0; i = syms[i].next) {
    const std::string piece = s.substr(syms[i].begin, syms[i].len);
    auto it = mergeable_.find(piece);
    if (it != mergeable_.end()) {
      out.push_back(it->second);
    } else if (byte_fallback_) {
      for (unsigned char b : piece) out.push_back(byte_ids_[b] >= 0 ? byte_ids_[b] : unk_);
    } else {
      out.push_back(unk_);
    }
  }
  return out;
}

std::vector<int32_t> Tokenizer::encode_document(std::string_view text, size_t max_tokens) const {
  check(max_tokens >= 2, "encode_document: max_tokens must leave room for BOS and EOS");
  auto ids = encode(text);
  if (ids.size() > max_tokens - 2) ids.resize(max_tokens - 2);
  std::vector<int32_t> out;
  out.reserve(ids.size() + 2);
  out.push_back(bos_);
  out.insert(out.end(), ids.begin(), ids.end());
  out.push_back(eos_);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string s;
  for (int32_t id : ids) {
    check(id >= 0 && id < vocab_size(), "{}: token id {} out of range", origin_, id);
    const auto& p = pieces_[id];
    if (p.type == 6) {
      s += static_cast<char>(std::strtoul(p.text.c_str() + 3, nullptr, 16));
    } else if (p.type == 1 || p.type == 4) {
      s += p.text;
    } else if (p.type == 2) {
      s += " \xe2\x81\x87 ";  // SentencePiece's surface for <unk>
    }
  }
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (escape_whitespaces_ && s.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += s[i++];
    }
  }
  if (add_dummy_prefix_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

fs::path default_tokenizer_path() {
  if (const char* env = std::getenv("BISTRO_TOKENIZER")) return env;
  return fs::path(BISTRO_ASSET_DIR) / "tokenizer" / "bistro-8k.model";
}

void train_tokenizer(Dataset& dataset, const fs::path& prefix, int vocab_size,
                     uint64_t max_documents) {
  // spm_train reads sentences, one per line.
  const auto input = fs::path(prefix.string() + ".input.txt");
  {
    AtomicFile f(input);
    uint64_t n = 0;
    for (const auto& c : dataset.configs()) {
      if (c.num_rows == 0 || n >= max_documents) continue;
      for (auto& doc : dataset.rows(c.name, 0, std::min(c.num_rows, max_documents - n))) {
        for (auto& ch : doc) {
          if (ch == '\n' || ch == '\r') ch = ' ';
        }
        f.write(doc);
        f.write("\n");
        ++n;
      }
    }
    f.commit();
  }
  const std::string cmd = fmt::format(
      "spm_train --input='{}' --model_prefix='{}' --model_type=bpe --vocab_size={} "
      "--byte_fallback=true --character_coverage=0.9995 --unk_id=0 --bos_id=1 --eos_id=2 "
      "--pad_id=-1 --normalization_rule_name=identity --remove_extra_whitespaces=false "
      "--add_dummy_prefix=true --split_digits=true --input_sentence_size=300000 "
      "--shuffle_input_sentence=true --max_sentence_length=16384 --num_threads=2 "
      "--minloglevel=1 --random_seed=42",
      input.string(), prefix.string(), vocab_size);
  const int rc = std::system(cmd.c_str());
  fs::remove(input);
  check(rc == 0, "spm_train failed (exit {}); is the sentencepiece package installed?", rc);
}

}  // namespace bistro
