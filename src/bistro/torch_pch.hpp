// The one precompiled header for every target that uses libtorch.
#pragma once
#include <torch/torch.h>
