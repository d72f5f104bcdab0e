// The validator's gauntlet (protocol v2): what stands between a verified update and the window's
// record, and between a miner and its weight. Torch-free and pure: the validator and `bistro
// experiment attack` call the same functions. docs/protocol.md, "The gauntlet", gives each rule
// and the attack it stops:
//   deadline   an update counts only if its object was written after the previous record was
//              published and before this window closed (bucket Last-Modified, with a tolerance)
//   copies     an update whose entries (index and value bits) or indices largely equal an
//              earlier upload's, this window or a recent one, is a copy; the later upload offends
//   score      per scored update, per sequence and paired (the same sequence before and after):
//              the loss drop on the validator's random pages, and the own-page margin (what the
//              update does to the miner's own pages beyond what other miners' updates do to
//              them: the proof of having trained on the assigned pages)
//   judge      two one-sided tests at stated error rates: an update is left out for harm only
//              when it raises the random pages' loss significantly (harm_alpha), and it is paid
//              only with significant evidence of own-page work (evidence_alpha; trust_alpha for
//              a miner whose last measured update passed).
//              Pay is the margin relative to the median margin of the updates that showed such
//              evidence (not of the whole window: cheats cannot drag the reference); never < 0
//   record     the updates that pass both tests, best d_random first, then trusted unmeasured
//              ones, then (unpaid, at most as many) updates without evidence that help
//              significantly on random pages
//   ratings    an EMA of the window scores (a missing or rejected update scores 0); weights are
//              proportional to the ratings
//
// Each rule lives in its own file of this folder: params.hpp (the knobs), checks.hpp (deadline,
// empty and copied uploads), evidence.hpp (the statistics), observation.hpp (one miner's window as
// measured; the null's spread), verdict.hpp (the two tests), rating.hpp (ratings, trust, pay and
// weights), tie_groups.hpp, budget.hpp (who is measured) and judge.hpp (the window's judgement).
// This header gathers them for the validator, the experiments and the tests.
#pragma once

#include "bistro/validator/budget.hpp"
#include "bistro/validator/checks.hpp"
#include "bistro/validator/evidence.hpp"
#include "bistro/validator/judge.hpp"
#include "bistro/validator/observation.hpp"
#include "bistro/validator/params.hpp"
#include "bistro/validator/rating.hpp"
#include "bistro/validator/tie_groups.hpp"
#include "bistro/validator/verdict.hpp"
