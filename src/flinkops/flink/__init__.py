"""flink"""
