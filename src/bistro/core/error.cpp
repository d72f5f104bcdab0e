#include "bistro/core/error.hpp"
