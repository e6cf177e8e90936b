"""How the learned policy searches for a schedule. Travels inside the decision artifact,
so what was evaluated is what is served; defaults live here, overrides in params.yaml
(``policy``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from training.config.baselines import BaselineConfig
from training.config.quiet_hours import QuietHours


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retry_grid_hours: int = Field(
        12,
        ge=1,
        le=24,
        description="grid of candidate retry times the dynamic programme chooses from",
    )
    fine_grids_hours: tuple[int, ...] = Field(
        (3, 1),
        description="then the programme again on each of these finer grids, every retry "
        "only within one step of the grid before of where it was (each divides the one "
        "before; empty: the first grid only)",
    )
    refine_steps_hours: tuple[int, ...] = Field(
        (),
        description="then each chosen retry is tried this many hours earlier and later, "
        "step after step, its schedule judged with its actual predecessors (empty: none)",
    )
    nominal_retry_gap_hours: float = Field(
        48.0, gt=0, description="gap to the previous retry assumed while placing later retries"
    )
    message_local_hours: tuple[int, ...] = Field(
        (8, 10, 12, 14, 16, 18, 20), description="local send hours tried for messages"
    )
    message_days_ahead: int = Field(3, ge=1, description="days ahead searched for each message")
    min_message_gap_hours: float = Field(20.0, ge=0, description="between two messages")
    min_message_gain: float = Field(
        0.002,
        ge=0,
        description="send a message only if its response probability is above (and, with "
        "prune_messages, only if the whole schedule gains at least this much from it)",
    )
    prune_messages: bool = Field(
        True,
        description="drop a planned message when the whole schedule's expected recovery "
        "without it is lower by less than min_message_gain (zero messages allowed)",
    )
    reuse_message_scores: bool = Field(
        True,
        description="a message round after the first picks each event's message among the "
        "times the last round that scored the event tried its chosen template and channel "
        "at (those min_message_gap_hours after its last message, inside the window), as "
        "scored then, without a model call; an event scores a round only when none is left",
    )
    quiet_hours: QuietHours = Field(
        QuietHours(), description="no message inside these local hours (every schedule)"
    )
    exploration_rate: float = Field(
        0.05, ge=0, le=1, description="share of decisions that take a randomized alternative"
    )
    exploration_shifts_hours: tuple[int, ...] = Field(
        (-12, -6, 6, 12), description="alternatives: every retry shifted by these hours"
    )
    exploration_first_retry_day_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="share of decisions whose first retry moves to another day the window "
        "and the rules allow, drawn uniformly (clock time kept, later retries pushed to "
        "keep the spacing): the logs then hold first retries on every day of the window, "
        "which the searched schedules never try; on top of exploration_rate, and only "
        "while exploration_rate > 0 (0 turns all exploration off)",
    )
    baseline: BaselineConfig = BaselineConfig()

    def __setstate__(self, state: dict[str, Any]) -> None:
        # artifacts saved before the coarse-to-fine search (``refine_hours``: every hour
        # up to that far either side of the grid's choice) keep searching as they did:
        # their own grid, no finer grids, hour steps down from their refine distance
        fields = dict(state.get("__dict__", {}))
        # artifacts saved before the first retry's day was explored keep exploring as
        # they did (shifts only)
        if fields and "exploration_first_retry_day_rate" not in fields:
            fields["exploration_first_retry_day_rate"] = 0.0
            state = {**state, "__dict__": fields}
        # artifacts saved before the message rounds reused scores score every round
        if fields and "reuse_message_scores" not in fields:
            fields["reuse_message_scores"] = False
            state = {**state, "__dict__": fields}
        if "refine_hours" in fields:
            refine = int(fields.pop("refine_hours"))
            fields.setdefault("fine_grids_hours", ())
            fields.setdefault("refine_steps_hours", tuple(range(refine, 0, -1)))
            fields_set = set(state.get("__pydantic_fields_set__", ())) - {"refine_hours"}
            state = {**state, "__dict__": fields, "__pydantic_fields_set__": fields_set}
        super().__setstate__(state)

    @field_validator("fine_grids_hours", "refine_steps_hours")
    @classmethod
    def _positive_steps(cls, steps: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        if any(step < 1 for step in steps):
            raise ValueError(f"{info.field_name} must be whole hours >= 1, got {list(steps)}")
        return steps

    @model_validator(mode="after")
    def _exploration_arms_apart(self) -> PolicyConfig:
        if self.exploration_rate + self.exploration_first_retry_day_rate > 1:
            raise ValueError(
                "exploration_rate + exploration_first_retry_day_rate must be at most 1"
            )
        whole_days = [s for s in self.exploration_shifts_hours if s and s % 24 == 0]
        if self.exploration_first_retry_day_rate > 0 and whole_days:
            raise ValueError(
                f"exploration_shifts_hours {whole_days}: whole days could return the same "
                "schedule as the first retry's day (the propensity would not be exact)"
            )
        return self

    @model_validator(mode="after")
    def _grids_nest(self) -> PolicyConfig:
        grids = (self.retry_grid_hours, *self.fine_grids_hours)
        for coarse, fine in zip(grids, grids[1:], strict=False):
            if fine >= coarse or coarse % fine:
                raise ValueError(
                    f"fine_grids_hours {list(self.fine_grids_hours)}: each grid must divide "
                    f"the one before (retry_grid_hours {self.retry_grid_hours} first)"
                )
        return self
