"""Pure translations between Anthropic's Messages dialect and the others.

Chat Completions requests, answers and streams (`chat_completions`,
`chat_stream`), litellm's OpenAI-shaped output (`openai_shape`), and what each
translating route cannot carry (`lost_content`). No I/O and no knowledge of
the catalogue: imports protocol only, so providers and the pipeline share it.
"""
