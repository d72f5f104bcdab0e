// Subcommand registration: each command file adds its subcommands to the app and returns what to
// run when one of them was chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>

#include <vector>
#include "bistro/data/local_dataset.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

std::vector<Command> add_data_commands(CLI::App& app);
std::vector<Command> add_bucket_commands(CLI::App& app);
std::vector<Command> add_wallet_commands(CLI::App& app);
std::vector<Command> add_chain_commands(CLI::App& app);
std::vector<Command> add_neuron_commands(CLI::App& app);
std::vector<Command> add_eval_commands(CLI::App& app);

// A wallet's hotkey (or coldkey) as a Signer. An encrypted coldkey's password comes from
// $BISTRO_WALLET_PASSWORD or the terminal.
std::unique_ptr<Signer> wallet_signer(const std::string& wallet_path, const std::string& name,
                                      const std::string& hotkey, bool coldkey);

// The dataset to read: "hf:ORG/NAME" (the Hugging Face datasets-server; endpoint from
// $BISTRO_HF_ENDPOINT, pages cached under $BISTRO_HOME/cache/hf), a directory, or (empty) the
// default corpus, built on first use.
std::unique_ptr<Dataset> open_dataset(const std::string& spec);

// A one-line progress bar on stderr (redrawn in place on a terminal, every 10% otherwise).
class Progress {
 public:
  explicit Progress(std::string label) : label_(std::move(label)) {}
  void update(uint64_t done, uint64_t total);

 private:
  std::string label_;
  int last_decile_ = -1;
};

}  // namespace bistro::cli
