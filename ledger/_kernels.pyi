from typing import Any

import numpy as np
import numpy.typing as npt

def copy_rows(
    rows: npt.NDArray[np.uint64],
    first_position: int,
    journal_seq: npt.NDArray[np.int64],
    ts_ns: npt.NDArray[np.int64],
) -> bytearray: ...
def account_sums(
    debit_of: npt.NDArray[np.intp],
    credit_of: npt.NDArray[np.intp],
    amount: npt.NDArray[np.int64],
    touched: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def running_within(
    debit_of: npt.NDArray[np.intp],
    credit_of: npt.NDArray[np.intp],
    amount: npt.NDArray[Any],
    low: npt.NDArray[np.int64],
    high: npt.NDArray[np.int64],
) -> bool: ...
