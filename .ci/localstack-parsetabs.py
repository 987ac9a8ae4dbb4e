"""Write PLY's parse tables for jsonpath-ng's two JSONPath grammars into LocalStack's virtualenv (run by `make`).

LocalStack's Step Functions evaluates every JSONPath of a state machine through jsonpath-ng (1.7.0 in LocalStack
2026.3.0's pins), which builds a new PLY parser for each path it parses and passes ``write_tables=0``: PLY generates
the LALR tables every time, ~60% of LocalStack's CPU in the CT flow's scenarios (py-spy, tests/integration). With a
table module beside the grammar, PLY's ``yacc()`` reads it instead, once it has checked that the module's grammar
signature is the grammar's (a stale module is ignored and the tables generated as before). The modules are PLY's
own output for the installed grammars; no code of LocalStack or jsonpath-ng changes.
"""

import os

import ply.yacc
from jsonpath_ng import parser
from jsonpath_ng.ext import parser as ext_parser

# jsonpath-ng names the table module after parser.py's file and start symbol; PLY looks for it in the package of
# the parser's class (jsonpath_ng for the base grammar, jsonpath_ng.ext for the extended one).
for module, cls in ((parser, parser.JsonPathParser), (ext_parser, ext_parser.ExtentedJsonPathParser)):
    ply.yacc.yacc(module=cls(), start="jsonpath", tabmodule="parser_jsonpath_parsetab", write_tables=True,
                  outputdir=os.path.dirname(module.__file__), debug=False, errorlog=ply.yacc.NullLogger())
    assert os.path.isfile(os.path.join(os.path.dirname(module.__file__), "parser_jsonpath_parsetab.py"))
