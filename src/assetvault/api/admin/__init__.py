"""The admin API for test harnesses and operators, under /_assetvault/."""
