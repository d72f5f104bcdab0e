// bistro wallet new | list | show | regen | sign | verify: btcli-compatible wallets.
#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "bistro/core/error.hpp"
#include "bistro/identity/mnemonic.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/identity/wallet.hpp"
#include "commands.hpp"

namespace bistro::cli {
namespace fs = std::filesystem;

namespace {
// From $BISTRO_WALLET_PASSWORD (automation) or the terminal without echo; never from argv.
std::string read_password(const std::string& prompt) {
  if (const char* env = std::getenv("BISTRO_WALLET_PASSWORD")) return env;
  check(isatty(STDIN_FILENO),
        "a password is needed: set BISTRO_WALLET_PASSWORD or run on a terminal");
  fmt::print(stderr, "{}", prompt);
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::string pw;
  std::getline(std::cin, pw);
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  fmt::print(stderr, "\n");
  return pw;
}

std::string read_file_prefix(const fs::path& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "wallet: cannot read {}", path.string());
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(in.gcount()));
  return head;
}

struct WalletArgs {
  std::string path, name = "default", hotkey = "default", mnemonic, seed, message, address,
                    signature, key = "hotkey";
  bool overwrite = false, no_password = false;
  WalletPaths paths() const {
    return {path.empty() ? default_wallet_root() : fs::path(path), name, hotkey};
  }
};

void add_wallet_flags(CLI::App* c, WalletArgs& a) {
  c->add_option("--wallet.path", a.path, "wallets directory (default ~/.bittensor/wallets)");
  c->add_option("--wallet.name", a.name, "wallet (coldkey) name");
  c->add_option("--wallet.hotkey", a.hotkey, "hotkey name");
}
}  // namespace

std::unique_ptr<Signer> wallet_signer(const std::string& wallet_path, const std::string& name,
                                      const std::string& hotkey, bool coldkey) {
  WalletArgs a;
  a.path = wallet_path;
  a.name = name;
  a.hotkey = hotkey;
  const auto p = a.paths();
  Keyfile k;
  if (coldkey) {
    std::optional<std::string> pw;
    const std::string head = read_file_prefix(p.coldkey(), 5);
    if (head == "$NACL") pw = read_password("coldkey password: ");
    k = read_keyfile(p.coldkey(), pw);
  } else {
    k = read_keyfile(p.hotkey_file(), std::nullopt);
  }
  return sr25519_signer(k.mini_secret);
}

std::vector<Command> add_wallet_commands(CLI::App& app) {
  std::vector<Command> out;
  auto* wallet = app.add_subcommand("wallet", "btcli-compatible wallets (sr25519)");
  wallet->require_subcommand(1);
  auto a = std::make_shared<WalletArgs>();

  auto* create = wallet->add_subcommand("new", "create a coldkey and a hotkey");
  add_wallet_flags(create, *a);
  create->add_flag("--overwrite", a->overwrite, "replace existing keys");
  create->add_flag("--no-password", a->no_password, "leave the coldkey unencrypted");
  out.push_back({create, [a] {
                   const auto p = a->paths();
                   const auto cold_phrase = generate_mnemonic(12),
                              hot_phrase = generate_mnemonic(12);
                   const auto cold = keyfile_from_mnemonic(cold_phrase);
                   const auto hot = keyfile_from_mnemonic(hot_phrase);
                   std::optional<std::string> pw;
                   if (!a->no_password) pw = read_password("coldkey password: ");
                   write_coldkey(p, cold, pw, a->overwrite);
                   write_keyfile(p.hotkey_file(), hot, std::nullopt, a->overwrite);
                   fmt::print("coldkey {}\n  mnemonic (shown once, write it down): {}\n",
                              cold.ss58_address, cold_phrase);
                   fmt::print("hotkey  {}\n  mnemonic (shown once, write it down): {}\n",
                              hot.ss58_address, hot_phrase);
                   return 0;
                 }});

  auto* list = wallet->add_subcommand("list", "wallets and hotkeys with their addresses");
  add_wallet_flags(list, *a);
  out.push_back({list, [a] {
                   const auto root = a->paths().root;
                   check(fs::is_directory(root), "no wallets in {}", root.string());
                   for (const auto& w : fs::directory_iterator(root)) {
                     WalletPaths p{root, w.path().filename().string(), ""};
                     std::string cold = "?";
                     if (fs::exists(p.coldkeypub())) {
                       cold = read_keyfile(p.coldkeypub(), std::nullopt).ss58_address;
                     }
                     fmt::print("{} (coldkey {})\n", p.name, cold);
                     if (fs::is_directory(root / p.name / "hotkeys")) {
                       for (const auto& h : fs::directory_iterator(root / p.name / "hotkeys")) {
                         fmt::print("  {} {}\n", h.path().filename().string(),
                                    read_keyfile(h.path(), std::nullopt).ss58_address);
                       }
                     }
                   }
                   return 0;
                 }});

  auto* show = wallet->add_subcommand("show", "addresses of one wallet (no secrets)");
  add_wallet_flags(show, *a);
  out.push_back({show, [a] {
                   const auto p = a->paths();
                   fmt::print("coldkey {}\nhotkey  {}\n",
                              read_keyfile(p.coldkeypub(), std::nullopt).ss58_address,
                              read_keyfile(p.hotkey_file(), std::nullopt).ss58_address);
                   return 0;
                 }});

  auto* regen = wallet->add_subcommand("regen", "restore a key from its mnemonic or seed");
  add_wallet_flags(regen, *a);
  regen->add_option("--key", a->key, "coldkey or hotkey");
  regen->add_option("--mnemonic", a->mnemonic, "the 12-24 words");
  regen->add_option("--seed", a->seed, "0x-prefixed 32-byte mini secret");
  regen->add_flag("--overwrite", a->overwrite, "replace an existing key");
  regen->add_flag("--no-password", a->no_password, "leave a coldkey unencrypted");
  out.push_back(
      {regen, [a] {
         check(a->key == "coldkey" || a->key == "hotkey", "--key must be coldkey or hotkey");
         check(a->mnemonic.empty() != a->seed.empty(), "give exactly one of --mnemonic, --seed");
         Keyfile k;
         if (!a->mnemonic.empty()) {
           k = keyfile_from_mnemonic(a->mnemonic);
         } else {
           check(a->seed.rfind("0x", 0) == 0, "--seed must start with 0x");
           k = keyfile_from_seed(from_hex<32>(a->seed.substr(2), "--seed"));
         }
         const auto p = a->paths();
         if (a->key == "hotkey") {
           write_keyfile(p.hotkey_file(), k, std::nullopt, a->overwrite);
         } else {
           std::optional<std::string> pw;
           if (!a->no_password) pw = read_password("coldkey password: ");
           write_coldkey(p, k, pw, a->overwrite);
         }
         fmt::print("{} {}\n", a->key, k.ss58_address);
         return 0;
       }});

  auto* sign = wallet->add_subcommand("sign", "sign a message with the hotkey (sr25519)");
  add_wallet_flags(sign, *a);
  sign->add_option("--message", a->message, "UTF-8 message")->required();
  out.push_back({sign, [a] {
                   const auto k = read_keyfile(a->paths().hotkey_file(), std::nullopt);
                   const auto sig = sr25519_sign(
                       sr25519_from_mini_secret(k.mini_secret),
                       {reinterpret_cast<const uint8_t*>(a->message.data()), a->message.size()});
                   fmt::print("0x{}\n", to_hex(sig));
                   return 0;
                 }});

  auto* verify = wallet->add_subcommand("verify", "verify an sr25519 signature");
  verify->add_option("--address", a->address, "SS58 address")->required();
  verify->add_option("--message", a->message, "UTF-8 message")->required();
  verify->add_option("--signature", a->signature, "0x-prefixed signature")->required();
  out.push_back({verify, [a] {
                   check(a->signature.rfind("0x", 0) == 0, "--signature must start with 0x");
                   const bool ok = sr25519_verify(
                       ss58_decode(a->address),
                       {reinterpret_cast<const uint8_t*>(a->message.data()), a->message.size()},
                       from_hex<64>(a->signature.substr(2), "--signature"));
                   fmt::print("{}\n", ok ? "valid" : "INVALID");
                   return ok ? 0 : 1;
                 }});
  return out;
}

}  // namespace bistro::cli
